//! Membership edits never give two primaries: real agents, real QUIC on loopback, a real
//! nftables partition.
//!
//! Each node used to count a majority of its own `peers` list. During a rolling edit of
//! `peers` the lists differ, and majorities of different lists need not intersect: with
//! n1 and n2 listing {n1, n2, n3} and n3, n4, n5 listing all five, {n1, n2} is a
//! majority of the first list and {n3, n4, n5} one of the second, so a partition
//! {n1, n2} | {n3, n4, n5} lets each side elect its own primary. The voter set is now
//! an agreed, persisted cluster state rather than each node's list:
//!
//! - a node with an empty `state_dir` bootstraps a cluster only together with a
//!   majority of the nodes it lists, all new and all listing the same nodes; nodes whose
//!   lists disagree form nothing;
//! - a node joining a running cluster is not a voter until `quorate member add`; an
//!   edited `peers` that disagrees with the agreed set is only reported.
//!
//! The two experiments of the issue, each watched by pollers asking every node's
//! `/primary` every 5 ms ([`PrimaryWatch`]); the assertion is that no two nodes were
//! ever primary at the same moment ([`proven_overlap`]), plus that some node was primary
//! at all (so a cluster that elects nobody does not pass):
//!
//! 1. five fresh nodes, n1 and n2 with the 3-node list, n3–n5 with the 5-node list;
//! 2. a running 3-node cluster, n3 restarted with the 5-node list (same `state_dir`),
//!    n4 and n5 started fresh with it.
//!
//! Both run ~3 s, then cut {n1, n2} | {n3, n4, n5} for ~3 s with nftables (every UDP
//! packet between the two sides' QUIC ports is dropped; each agent sends and receives
//! all its QUIC traffic on its one `listen` port), then heal and run ~2 s more. They
//! need root and `nft`, and skip with a message otherwise.

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use quorate_tests::netcut;
use quorate_tests::primary::{Answer, PrimaryWatch, proven_overlap};
use quorate_tests::{Stopwatch, TestCluster, now, wait_until};

/// Nodes n1…n5; n1 is index 0.
const N: usize = 5;
/// The two sides of the partition.
const LEFT: [usize; 2] = [0, 1];
const RIGHT: [usize; 3] = [2, 3, 4];
/// How often each poller asks `/primary`.
const POLL: Duration = Duration::from_millis(5);
/// Generous bound for anything that should happen within a second or two.
const SETTLE: Duration = Duration::from_secs(15);
/// Running before the cut, cut, and healed.
const BEFORE: Duration = Duration::from_secs(3);
const CUT: Duration = Duration::from_secs(3);
const AFTER: Duration = Duration::from_secs(2);

fn skipped() -> bool {
    if netcut::available() {
        return false;
    }
    eprintln!("SKIPPED: nftables is not usable here (needs root and nft); .ci/run installs it");
    true
}

/// A two-sided partition: every UDP packet from a port of one side to a port of the
/// other is dropped, both ways, in its own nftables table; dropping it heals.
struct Partition {
    table: String,
}

impl Partition {
    fn new(a: &[u16], b: &[u16]) -> Result<Self, String> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let table = format!(
            "quorate_test_membership_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let set = |ports: &[u16]| {
            ports
                .iter()
                .map(u16::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        let (a, b) = (set(a), set(b));
        // `output` sees every locally sent packet, loopback included, exactly once.
        nft(&format!(
            "table inet {table} {{\n  chain out {{\n    type filter hook output priority -10; policy accept;\n    \
             udp sport {{ {a} }} udp dport {{ {b} }} drop\n    \
             udp sport {{ {b} }} udp dport {{ {a} }} drop\n  }}\n}}\n"
        ))?;
        Ok(Self { table })
    }
}

impl Drop for Partition {
    fn drop(&mut self) {
        let _ = nft(&format!("delete table inet {}\n", self.table));
    }
}

fn nft(script: &str) -> Result<(), String> {
    use std::io::Write as _;
    let out = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            if let Some(stdin) = child.stdin.as_mut() {
                stdin.write_all(script.as_bytes())?;
            }
            child.wait_with_output()
        })
        .map_err(|e| format!("nft: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "nft: {}\n{script}",
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn http_addrs(c: &TestCluster) -> Vec<SocketAddr> {
    (0..N).map(|i| c.http_addr(i)).collect()
}

fn quic_ports(c: &TestCluster, nodes: &[usize]) -> Vec<u16> {
    nodes.iter().map(|&i| c.quic_addr(i).port()).collect()
}

/// Rewrites node `i`'s config so that its `peers` are exactly `peers`.
fn set_peers(c: &mut TestCluster, i: usize, peers: &[usize]) {
    let mut config = c.config(i).clone();
    config.peers = peers.iter().map(|&j| c.quic_addr(j)).collect();
    c.set_config(i, config);
}

/// Every node but `i`.
fn all_but(i: usize) -> Vec<usize> {
    (0..N).filter(|&j| j != i).collect()
}

/// Some node (not necessarily only one) answers `/primary` 200 now.
fn some_primary(c: &TestCluster) -> Option<usize> {
    (0..N).find(|&i| c.http(i, "GET", "/primary").is_ok_and(|r| r.status == 200))
}

/// What each node answered in each phase, for the test's output and failure messages:
/// `n1: before 412×200 (terms [3]), cut 0×200, after 0×200`.
fn summary(c: &TestCluster, answers: &[Answer], cut: Instant, healed: Instant) -> String {
    let mut out = String::new();
    for i in 0..N {
        let mut line = format!("{}:", c.id(i));
        for (phase, from, to) in [
            ("before", None, Some(cut)),
            ("cut", Some(cut), Some(healed)),
            ("after", Some(healed), None),
        ] {
            let mut terms: Vec<u64> = Vec::new();
            let mut count = 0;
            for a in answers.iter().filter(|a| {
                a.node == i
                    && a.is_primary()
                    && from.is_none_or(|f| a.sent >= f)
                    && to.is_none_or(|t| a.sent < t)
            }) {
                count += 1;
                if let Some(t) = a.term
                    && !terms.contains(&t)
                {
                    terms.push(t);
                }
            }
            line.push_str(&format!(" {phase} {count}×200 (terms {terms:?})"));
        }
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// The shared second half of both experiments, with `watch` polling every node since
/// before anything started: cut {n1, n2} | {n3, n4, n5} for [`CUT`], heal, run at
/// least [`AFTER`] and until some node is primary again, then check the answers.
fn cut_heal_and_check(c: &TestCluster, watch: PrimaryWatch) {
    let cut_at = now();
    let partition =
        Partition::new(&quic_ports(c, &LEFT), &quic_ports(c, &RIGHT)).expect("nft rules");
    eprintln!("partitioned {LEFT:?} | {RIGHT:?} (node indices)");
    std::thread::sleep(CUT);
    drop(partition);
    let healed_at = now();
    eprintln!("healed");
    let clock = Stopwatch::start();
    let primary_again = wait_until(SETTLE, || some_primary(c).is_some());
    if let Some(rest) = AFTER.checked_sub(clock.elapsed()) {
        std::thread::sleep(rest);
    }
    let answers = watch.finish();
    let summary = summary(c, &answers, cut_at, healed_at);
    eprintln!("answers of /primary 200 per node and phase:\n{summary}");
    if let Some(proof) = proven_overlap(&answers) {
        // Which phases show it on their own answers (a subset proves as much).
        let phases: Vec<String> = [
            ("before the cut", None, Some(cut_at)),
            ("during the cut", Some(cut_at), Some(healed_at)),
            ("after healing", Some(healed_at), None),
        ]
        .into_iter()
        .filter_map(|(phase, from, to)| {
            let some: Vec<Answer> = answers
                .iter()
                .filter(|a| from.is_none_or(|f| a.sent >= f) && to.is_none_or(|t| a.sent < t))
                .cloned()
                .collect();
            proven_overlap(&some).map(|p| format!("{phase}: {p}"))
        })
        .collect();
        panic!(
            "two primaries at once: {proof}\nby phase:\n{}\n{summary}",
            phases.join("\n")
        );
    }
    assert!(
        answers.iter().any(Answer::is_primary),
        "no node was ever primary\n{summary}"
    );
    assert!(
        primary_again,
        "no node was primary within {SETTLE:?} of healing\n{summary}"
    );
}

/// Five fresh nodes; n1 and n2 list {n1, n2, n3}, n3–n5 list all five. {n3, n4, n5}
/// are a majority of their own (equal) lists and may bootstrap a five-voter cluster;
/// n1's and n2's lists disagree with n3's, so they form nothing of their own. At most
/// one primary in total, through the cut and after it.
#[test]
fn fresh_nodes_with_two_peer_lists_never_make_two_primaries() {
    if skipped() {
        return;
    }
    let mut c = TestCluster::builder(N).build();
    // The builder lists every other node; n1 and n2 get the short list.
    set_peers(&mut c, 0, &[1, 2]);
    set_peers(&mut c, 1, &[0, 2]);
    let watch = PrimaryWatch::start(&http_addrs(&c), POLL);
    let clock = Stopwatch::start();
    for i in 0..N {
        c.start(i);
    }
    assert!(
        wait_until(SETTLE, || some_primary(&c).is_some()),
        "no primary within {SETTLE:?} of starting five fresh nodes"
    );
    if let Some(rest) = BEFORE.checked_sub(clock.elapsed()) {
        std::thread::sleep(rest);
    }
    cut_heal_and_check(&c, watch);
}

/// A running three-node cluster n1–n3; n3 is restarted (SIGTERM, same `state_dir`)
/// with a `peers` listing all five, and n4 and n5 start fresh with the five-node list.
/// The agreed voters stay {n1, n2, n3} (n4 and n5 are not members until added), so only
/// the side holding two of them may have a primary.
#[test]
fn restarted_node_and_two_new_nodes_with_a_longer_list_never_make_two_primaries() {
    if skipped() {
        return;
    }
    let mut c = TestCluster::builder(N).build();
    // n1–n3 form the cluster; n4 and n5 have configs (and ports) but do not run yet.
    for i in 0..3 {
        let peers: Vec<usize> = (0..3).filter(|&j| j != i).collect();
        set_peers(&mut c, i, &peers);
    }
    let watch = PrimaryWatch::start(&http_addrs(&c), POLL);
    for i in 0..3 {
        c.start(i);
    }
    assert!(
        quorate_tests::primary::wait_one_primary(&http_addrs(&c)[..3], SETTLE).is_some(),
        "no single primary among n1–n3 within {SETTLE:?}"
    );

    // The rolling edit, caught half-way: n3 and the two new nodes list all five.
    assert!(c.term(2).success(), "n3 exits 0 on SIGTERM");
    set_peers(&mut c, 2, &all_but(2));
    set_peers(&mut c, 3, &all_but(3));
    set_peers(&mut c, 4, &all_but(4));
    let clock = Stopwatch::start();
    for i in 2..N {
        c.start(i);
    }
    // n3 is back in the cluster (a member sees it alive) and n4 and n5 answer HTTP.
    assert!(
        wait_until(SETTLE, || {
            [0, 1]
                .iter()
                .any(|&i| c.state_of(i, "n3").as_deref() == Some("alive"))
        }),
        "neither n1 nor n2 sees the restarted n3 alive within {SETTLE:?}"
    );
    assert!(
        wait_until(SETTLE, || (3..N)
            .all(|i| c.http(i, "GET", "/primary").is_ok())),
        "n4 and n5 do not answer HTTP within {SETTLE:?}"
    );
    if let Some(rest) = BEFORE.checked_sub(clock.elapsed()) {
        std::thread::sleep(rest);
    }
    cut_heal_and_check(&c, watch);
}
