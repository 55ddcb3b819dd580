//! The one-shot status table: `quorate status`, `quorate` without a terminal, and the
//! demo's refresh. Pure: a [`ClusterStatus`] in, text out. The node table's columns and
//! their words are [`crate::columns`]'s, the same as the terminal UI's; numbers are
//! printed here in full.

use proto::status::{ClusterStatus, NodeStatus};

use crate::columns::{Align, COLUMNS, Column, Ctx, Datum};

/// Renders the cluster as a header line, an aligned node table (the answering node
/// marked `*`), the configured peers nobody has been identified at, and the config keys
/// the answering agent runs without (pending a restart). Ends with a
/// newline; no line has trailing spaces.
pub fn render_status(status: &ClusterStatus) -> String {
    let alive = alive_voters(status);
    let mut out = format!(
        "cluster {}  term {}  primary {}  quorum {} ({}/{})",
        status.cluster,
        status.term,
        status.primary.as_deref().unwrap_or("-"),
        if status.quorum { "yes" } else { "no" },
        alive,
        status.voters,
    );
    if status.frozen {
        out.push_str("  frozen");
    }
    out.push('\n');

    let mut nodes: Vec<&NodeStatus> = status.nodes.iter().collect();
    nodes.sort_by(|a, b| a.node.cmp(&b.node));
    let columns: Vec<&Column> = COLUMNS.iter().filter(|c| c.status).collect();
    let mut rows: Vec<Vec<String>> = vec![columns.iter().map(|c| c.title.to_string()).collect()];
    rows.extend(nodes.into_iter().map(|n| {
        let ctx = Ctx::plain(n);
        columns
            .iter()
            .map(|c| text((c.cell)(n, &ctx).datum))
            .collect()
    }));
    let align: Vec<Align> = columns.iter().map(|c| c.align).collect();
    out.push_str(&aligned(&rows, &align));

    out.push_str(&certificates(status));
    if !status.unreachable_peers.is_empty() {
        out.push_str("unreachable: ");
        out.push_str(&status.unreachable_peers.join(", "));
        out.push('\n');
    }
    if !status.members.unwatched.is_empty() {
        // A non-voter exchanges heartbeats with the voters only: the others are theirs
        // to watch, not missing.
        out.push_str(&format!(
            "not watched by {} (non-voters; ask a voter): {}\n",
            status.node,
            status.members.unwatched.join(", ")
        ));
    }
    if !status.pending_restart.is_empty() {
        // The answering agent's config file says more than it runs with.
        out.push_str(&format!(
            "pending restart on {}: {}\n",
            status.node,
            status.pending_restart.join(", ")
        ));
    }
    if !status.timing_mismatch.is_empty() {
        // Leases and votes between these nodes do not count: fix [timing] first.
        out.push_str(&format!(
            "timing mismatch between {} and {}: set the same [timing] on every node\n",
            status.node,
            status.timing_mismatch.join(", ")
        ));
    }
    out.push_str(&members_disagreement(status));
    out
}

/// The certificate that ends first, and whose it is: what to renew next (the `certs`
/// check warns 30 days ahead; this line shows the date long before). Empty when no node
/// reports its certificate's end.
fn certificates(status: &ClusterStatus) -> String {
    // RFC 3339 in UTC sorts as text.
    let first = status
        .nodes
        .iter()
        .filter_map(|n| Some((n.cert_expires.as_deref()?, n.node.as_str())))
        .min();
    match first {
        Some((end, node)) => {
            let day = end.split('T').next().unwrap_or(end);
            format!("certificates: the first ends {day} ({node})\n")
        }
        None => String::new(),
    }
}

/// How many voters of the agreed member set the answering node sees alive (itself
/// included): a node out of the set, or a non-voter, does not count. Without a member set
/// in the status (an older agent), every alive node counts.
pub fn alive_voters(status: &ClusterStatus) -> usize {
    let alive = status.nodes.iter().filter(|n| n.state == "alive");
    let m = &status.members;
    if m.members.is_empty() {
        return alive.count();
    }
    alive
        .filter(|n| {
            m.members.iter().any(|s| {
                s.voter
                    && match &s.node {
                        Some(id) => *id == n.node,
                        None => s.addr == n.addr,
                    }
            })
        })
        .count()
}

/// The rows as lines, each column as wide as its widest cell, two spaces between
/// columns; no trailing spaces.
fn aligned(rows: &[Vec<String>], align: &[Align]) -> String {
    let mut widths = vec![0usize; align.len()];
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            let pad = widths
                .get(i)
                .copied()
                .unwrap_or(0)
                .saturating_sub(cell.chars().count());
            match align.get(i).copied().unwrap_or(Align::Left) {
                Align::Left => {
                    line.push_str(cell);
                    line.extend(std::iter::repeat_n(' ', pad));
                }
                Align::Right => {
                    line.extend(std::iter::repeat_n(' ', pad));
                    line.push_str(cell);
                }
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// The lines `quorate status` and `quorate member list` end with when the answering
/// node's member set has a problem or its `peers` disagree with it; empty otherwise.
fn members_disagreement(status: &ClusterStatus) -> String {
    let m = &status.members;
    let mut out = String::new();
    if let Some(problem) = &m.problem {
        out.push_str(&format!("members on {}: {problem}\n", status.node));
    }
    if !m.only_in_peers.is_empty() || !m.not_in_peers.is_empty() {
        let mut parts = Vec::new();
        if !m.only_in_peers.is_empty() {
            parts.push(format!("only in peers {}", m.only_in_peers.join(", ")));
        }
        if !m.not_in_peers.is_empty() {
            parts.push(format!("not in peers {}", m.not_in_peers.join(", ")));
        }
        out.push_str(&format!(
            "members on {}: its peers disagree with the agreed member set{}: {} (peers does not change who votes: `quorate member` does; make peers match and reload)\n",
            status.node,
            if m.stamp.is_empty() {
                String::new()
            } else {
                format!(" {}", m.stamp)
            },
            parts.join("; ")
        ));
    }
    out
}

const MEMBER_COLUMNS: [(&str, Align); 4] = [
    ("NODE", Align::Left),
    ("ADDR", Align::Left),
    ("VOTE", Align::Left),
    ("STATE", Align::Left),
];

/// `quorate member list`: the agreed member set as the answering node holds it — a
/// header with its stamp and counts, one row per member (in the set's address order,
/// the answering node marked `*`, its state as the answering node sees it, `-` when it
/// knows none), the change being committed, and what disagrees with the set. Ends with a
/// newline; no line has trailing spaces.
pub fn render_members(status: &ClusterStatus) -> String {
    let m = &status.members;
    let mut out = String::new();
    if m.stamp.is_empty() {
        out.push_str(&format!("no agreed member set (held by {})\n", status.node));
    } else {
        let voters = m.members.iter().filter(|s| s.voter).count();
        let others = m.members.len() - voters;
        out.push_str(&format!(
            "member set {} (held by {}): {voters} voter{}",
            m.stamp,
            status.node,
            if voters == 1 { "" } else { "s" },
        ));
        if others > 0 {
            out.push_str(&format!(
                ", {others} non-voter{}",
                if others == 1 { "" } else { "s" }
            ));
        }
        out.push('\n');
    }
    if !m.members.is_empty() {
        let mut rows: Vec<Vec<String>> = vec![MEMBER_COLUMNS.map(|(t, _)| t.to_string()).to_vec()];
        for slot in &m.members {
            // A bootstrap slot has no id until a primary has seen its node: matched by
            // address then.
            let seen = status.nodes.iter().find(|n| match &slot.node {
                Some(id) => n.node == *id,
                None => n.addr == slot.addr,
            });
            let mut name = slot.node.clone().unwrap_or_else(|| "-".to_string());
            if seen.is_some_and(|n| n.local) {
                name.push('*');
            }
            let state = match (seen, &slot.node) {
                (Some(n), Some(_)) => n.state.to_string(),
                (Some(n), None) => format!("{} (as {})", n.state, n.node),
                (None, _) => "-".to_string(),
            };
            rows.push(vec![
                name,
                slot.addr.clone(),
                if slot.voter { "voter" } else { "non-voter" }.to_string(),
                state,
            ]);
        }
        out.push_str(&aligned(&rows, &MEMBER_COLUMNS.map(|(_, a)| a)));
    }
    if let Some(change) = &m.change {
        out.push_str(&format!("being committed: {change}\n"));
    }
    out.push_str(&members_disagreement(status));
    out
}

/// A cell in full: percentages and numbers unrounded to a width, ages to the millisecond.
fn text(datum: Datum) -> String {
    match datum {
        Datum::Text(t) => t,
        Datum::Share(f) => percent(f),
        Datum::Number(x) => number(x),
        Datum::Millis { ms, signed } => millis(ms, signed),
        Datum::Age(d) => age(d.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))),
    }
}

fn percent(fraction: f64) -> String {
    if fraction.is_finite() {
        format!("{:.0}%", fraction * 100.0)
    } else {
        "-".to_string()
    }
}

fn number(x: f64) -> String {
    if x.is_finite() {
        format!("{x:.2}")
    } else {
        "-".to_string()
    }
}

fn millis(ms: Option<f64>, signed: bool) -> String {
    match ms {
        Some(ms) if ms.is_finite() => {
            let precision = if ms.abs() < 10.0 { 1 } else { 0 };
            if signed {
                format!("{ms:+.precision$}ms")
            } else {
                format!("{ms:.precision$}ms")
            }
        }
        _ => "-".to_string(),
    }
}

fn age(ms: Option<u64>) -> String {
    match ms {
        None => "-".to_string(),
        Some(ms) if ms < 1_000 => format!("{ms}ms"),
        Some(ms) if ms < 60_000 => format!("{:.1}s", ms as f64 / 1000.0),
        Some(ms) if ms < 3_600_000 => format!("{}m{:02}s", ms / 60_000, ms / 1000 % 60),
        Some(ms) => format!("{}h{:02}m", ms / 3_600_000, ms / 60_000 % 60),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proto::status::{LoadStatus, MemberStatus, MembersStatus, VersionStatus};

    use super::*;

    fn node(name: &str, addr: &str) -> NodeStatus {
        NodeStatus {
            node: name.to_string(),
            addr: addr.to_string(),
            state: "alive".into(),
            role: "secondary".into(),
            local: false,
            ready: true,
            healthy: true,
            draining: false,
            priority: 100,
            roles: vec![],
            incarnation: 1,
            rtt_ms: Some(0.42),
            clock_offset_ms: Some(-1.25),
            last_seen_ms: Some(80),
            phi: Some(0.1),
            load: LoadStatus {
                cpu: 0.12,
                mem: 0.4,
                load1: 0.3,
            },
            checks: BTreeMap::new(),
            config: vec![],
            mounts: vec![],
            version: VersionStatus {
                agent: "0.1.0".to_string(),
                app: None,
            },
            check_reasons: Default::default(),
            drain: None,
            balancer: None,
            suspected_by: Vec::new(),
            cert_expires: None,
        }
    }

    fn cluster() -> ClusterStatus {
        let mut n1 = node("n1", "10.0.0.11:7700");
        n1.local = true;
        n1.rtt_ms = None;
        n1.clock_offset_ms = None;
        n1.last_seen_ms = None;
        let mut n2 = node("n2", "10.0.0.12:7700");
        n2.role = "primary".into();
        let mut n3 = node("n3", "10.0.0.13:7700");
        n3.state = "suspect".into();
        n3.healthy = false;
        n3.checks.insert("app".into(), "ok".into());
        n3.checks.insert("mounts".into(), "hung".into());
        n3.checks.insert("config".into(), "drift".into());
        n3.rtt_ms = Some(12.6);
        n3.clock_offset_ms = Some(250.0);
        n3.last_seen_ms = Some(2_345);
        n3.load = LoadStatus {
            cpu: 1.0,
            mem: 0.051,
            load1: 12.5,
        };
        ClusterStatus {
            cluster: "dam-prod".to_string(),
            node: "n1".to_string(),
            term: 7,
            primary: Some("n2".to_string()),
            quorum: true,
            frozen: false,
            voters: 4,
            // Out of order on purpose: the table sorts by node id.
            nodes: vec![n3, n1, n2],
            unreachable_peers: vec!["10.0.0.14:7700".to_string()],
            tasks: vec![],
            pending_restart: vec![],
            timing_mismatch: vec![],
            members: Default::default(),
        }
    }

    #[test]
    fn renders_header_aligned_table_and_footer() {
        let expected = "\
cluster dam-prod  term 7  primary n2  quorum yes (2/4)
NODE  STATE    ROLE       HEALTH              CPU  MEM   LOAD    RTT  OFFSET  SEEN  ADDR
n1*   alive    secondary  ok                  12%  40%   0.30      -       -     -  10.0.0.11:7700
n2    alive    primary    ok                  12%  40%   0.30  0.4ms  -1.2ms  80ms  10.0.0.12:7700
n3    suspect  secondary  fail:mounts+drift  100%   5%  12.50   13ms  +250ms  2.3s  10.0.0.13:7700
unreachable: 10.0.0.14:7700
";
        assert_eq!(render_status(&cluster()), expected);
    }

    #[test]
    fn the_first_certificate_to_end_is_named() {
        let mut status = cluster();
        for n in &mut status.nodes {
            n.cert_expires = Some(match n.node.as_str() {
                "n3" => "2027-01-02T00:00:00Z".into(),
                _ => "2031-12-04T00:00:00Z".into(),
            });
        }
        let text = render_status(&status);
        assert!(
            text.contains("certificates: the first ends 2027-01-02 (n3)\n"),
            "{text}"
        );
    }

    #[test]
    fn no_primary_no_quorum_frozen_nothing_unreachable() {
        let mut status = cluster();
        status.primary = None;
        status.quorum = false;
        status.frozen = true;
        status.unreachable_peers.clear();
        let out = render_status(&status);
        assert_eq!(
            out.lines().next(),
            Some("cluster dam-prod  term 7  primary -  quorum no (2/4)  frozen")
        );
        assert!(!out.contains("unreachable"));
        assert!(!out.contains("pending restart"));
        assert!(out.lines().all(|l| l == l.trim_end()));
        status.pending_restart = vec!["timing.lease".into(), "peers".into()];
        assert_eq!(
            render_status(&status).lines().last(),
            Some("pending restart on n1: timing.lease, peers")
        );
        status.timing_mismatch = vec!["n2".into()];
        assert_eq!(
            render_status(&status).lines().last(),
            Some("timing mismatch between n1 and n2: set the same [timing] on every node")
        );
    }

    #[test]
    fn member_problems_and_peers_disagreement_end_the_status() {
        let mut status = cluster();
        status.timing_mismatch = vec!["n2".into()];
        assert!(!render_status(&status).contains("members"));
        status.members.problem =
            Some("not a voter in the agreed member set (removed, or a non-voter)".into());
        assert_eq!(
            render_status(&status).lines().last(),
            Some("members on n1: not a voter in the agreed member set (removed, or a non-voter)")
        );
        status.members.stamp = "7.4".into();
        status.members.only_in_peers = vec!["10.0.0.14:7700".into(), "10.0.0.15:7700".into()];
        status.members.not_in_peers = vec!["10.0.0.16:7700".into()];
        let out = render_status(&status);
        let tail: Vec<&str> = out.lines().rev().take(3).collect();
        assert_eq!(
            tail,
            [
                "members on n1: its peers disagree with the agreed member set 7.4: only in peers 10.0.0.14:7700, 10.0.0.15:7700; not in peers 10.0.0.16:7700 (peers does not change who votes: `quorate member` does; make peers match and reload)",
                "members on n1: not a voter in the agreed member set (removed, or a non-voter)",
                "timing mismatch between n1 and n2: set the same [timing] on every node",
            ]
        );
        status.members.problem = None;
        status.members.only_in_peers.clear();
        assert_eq!(
            render_status(&status).lines().last(),
            Some(
                "members on n1: its peers disagree with the agreed member set 7.4: not in peers 10.0.0.16:7700 (peers does not change who votes: `quorate member` does; make peers match and reload)"
            )
        );
    }

    fn member(node: Option<&str>, addr: &str, voter: bool) -> MemberStatus {
        MemberStatus {
            node: node.map(str::to_string),
            addr: addr.to_string(),
            voter,
        }
    }

    #[test]
    fn member_list_shows_the_set_states_and_what_disagrees() {
        let mut status = cluster();
        status.members = MembersStatus {
            stamp: "7.4".into(),
            // In the set's own order (by address), not re-sorted.
            members: vec![
                member(Some("n1"), "10.0.0.11:7700", true),
                member(Some("n2"), "10.0.0.12:7700", true),
                member(Some("n3"), "10.0.0.13:7700", true),
                member(Some("n4"), "10.0.0.14:7700", false),
                member(None, "10.0.0.9:7700", true),
            ],
            problem: None,
            only_in_peers: vec![],
            not_in_peers: vec!["10.0.0.14:7700".into()],
            unwatched: vec![],
            change: Some("add n4 at 10.0.0.14:7700 (non-voter)".into()),
        };
        let expected = "\
member set 7.4 (held by n1): 4 voters, 1 non-voter
NODE  ADDR            VOTE       STATE
n1*   10.0.0.11:7700  voter      alive
n2    10.0.0.12:7700  voter      alive
n3    10.0.0.13:7700  voter      suspect
n4    10.0.0.14:7700  non-voter  -
-     10.0.0.9:7700   voter      -
being committed: add n4 at 10.0.0.14:7700 (non-voter)
members on n1: its peers disagree with the agreed member set 7.4: not in peers 10.0.0.14:7700 (peers does not change who votes: `quorate member` does; make peers match and reload)
";
        assert_eq!(render_members(&status), expected);

        // A bootstrap slot takes the state of the node seen at its address.
        status.members.members[4].addr = "10.0.0.13:7700".into();
        status.members.members.remove(2);
        status.members.change = None;
        status.members.not_in_peers.clear();
        let out = render_members(&status);
        assert!(
            out.lines()
                .any(|l| l == "-     10.0.0.13:7700  voter      suspect (as n3)"),
            "{out}"
        );
        assert!(out.lines().all(|l| l == l.trim_end()), "{out}");
        assert!(!out.contains("members on"), "{out}");
    }

    #[test]
    fn quorum_counts_alive_voters_of_the_member_set() {
        let mut status = cluster();
        // No member set reported: every alive node counts (n1, n2).
        assert!(
            render_status(&status)
                .starts_with("cluster dam-prod  term 7  primary n2  quorum yes (2/4)\n")
        );
        // n1 is a non-voter, n3 (suspect) and an unnamed slot at n2's address vote.
        status.members.members = vec![
            member(Some("n1"), "10.0.0.11:7700", false),
            member(None, "10.0.0.12:7700", true),
            member(Some("n3"), "10.0.0.13:7700", true),
        ];
        status.voters = 2;
        assert_eq!(alive_voters(&status), 1);
        assert!(render_status(&status).contains("quorum yes (1/2)"));
    }

    #[test]
    fn member_list_without_a_set() {
        let mut status = cluster();
        status.members.problem = Some(
            "no agreed member set yet: 1 of the 2 nodes needed to bootstrap one are up with this node's peer list".into(),
        );
        assert_eq!(
            render_members(&status),
            "\
no agreed member set (held by n1)
members on n1: no agreed member set yet: 1 of the 2 nodes needed to bootstrap one are up with this node's peer list
"
        );
        status.members = MembersStatus {
            stamp: "1.1".into(),
            members: vec![member(Some("n1"), "10.0.0.11:7700", true)],
            ..Default::default()
        };
        assert_eq!(
            render_members(&status).lines().next(),
            Some("member set 1.1 (held by n1): 1 voter")
        );
    }

    #[test]
    fn health_words() {
        let health = |n: &NodeStatus| crate::columns::health(n).text;
        let mut n = node("n", "a");
        assert_eq!(health(&n), "ok");
        n.ready = false;
        assert_eq!(health(&n), "unready");
        n.healthy = false;
        assert_eq!(health(&n), "fail");
        n.checks.insert("app".into(), "fail".into());
        assert_eq!(health(&n), "fail:app");
        // One wording with the terminal UI, worst first: failing beats drained.
        n.draining = true;
        assert_eq!(health(&n), "fail:app");
        n.healthy = true;
        assert_eq!(health(&n), "draining");
        n.checks.insert("config".into(), "drift".into());
        assert_eq!(health(&n), "draining+drift");
    }

    #[test]
    fn ages() {
        assert_eq!(age(None), "-");
        assert_eq!(age(Some(999)), "999ms");
        assert_eq!(age(Some(59_949)), "59.9s");
        assert_eq!(age(Some(125_000)), "2m05s");
        assert_eq!(age(Some(3_900_000)), "1h05m");
    }
}
