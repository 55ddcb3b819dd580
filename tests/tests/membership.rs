//! Membership edits never give two primaries: real agents, real QUIC on loopback, a real
//! nftables partition, member changes over the operator channel.
//!
//! Each node used to count a majority of its own `peers` list. During a rolling edit of
//! `peers` the lists differ, and majorities of different lists need not intersect: with
//! n1 and n2 listing {n1, n2, n3} and n3, n4, n5 listing all five, {n1, n2} is a
//! majority of the first list and {n3, n4, n5} one of the second, so a partition
//! {n1, n2} | {n3, n4, n5} let each side elect its own primary. The voter set is now an
//! agreed member set persisted in each node's `state_dir` (`agent/src/core/voters.rs`):
//!
//! - a node with an empty `state_dir` bootstraps a cluster only together with the nodes
//!   it lists, all new and all listing the same nodes; a node that sees a listed node
//!   with another list forms nothing and says so (`members.problem` in `/cluster`);
//! - a node joining a running cluster is not a voter until `quorate member add`; an
//!   edited `peers` that disagrees with the agreed set is only reported
//!   (`members.only_in_peers`, `members.not_in_peers`);
//! - changes are made by the primary, one voter at a time, asked on any node's operator
//!   channel; `member force-new-cluster` recovers a majority lost for good.
//!
//! Every experiment is watched by pollers asking every node's `/primary` every 5 ms
//! ([`PrimaryWatch`]); the assertion common to all is that no two nodes were ever
//! primary at the same moment ([`proven_overlap`]).
//!
//! 1. five fresh nodes, n1 and n2 with the 3-node list, n3–n5 with the 5-node list: no
//!    cluster forms, through a cut {n1, n2} | {n3, n4, n5} and after it; and the same
//!    nodes started inside that cut, where each side bootstraps its own cluster (the
//!    limit of any rule that lets a majority bootstrap without the rest) and the two
//!    stand down to at most one primary once they meet;
//! 2. a running 3-node cluster, n3 restarted with the 5-node list (same `state_dir`),
//!    n4 and n5 started fresh with it: only {n1, n2} may have a primary in the cut; once
//!    n4 and n5 are added, only {n3, n4, n5} may;
//! 3. a rolling add of two nodes and a removal, with the handover gaps and the time each
//!    change took to commit printed;
//! 4. `force-new-cluster` on the one survivor of a 3-node cluster, and a lost node added
//!    back with an emptied `state_dir`.
//!
//! The cuts drop every UDP packet between the two sides' QUIC ports (each agent sends
//! and receives all its QUIC traffic on its one `listen` port); they need root and
//! `nft`, and the tests that cut skip with a message otherwise.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use proto::MemberChange;
use proto::ctl::CtlCommand;
use quorate_agent::core::voters::BOOTSTRAP_WAIT;
use quorate_agent::ctl::client::Outcome;
use quorate_tests::netcut::{self, nft};
use quorate_tests::primary::{Answer, PrimaryWatch, gaps, proven_overlap, wait_one_primary};
use quorate_tests::{Stopwatch, TestCluster, now, wait_until, wait_until_every};
use serde_json::Value;

/// Nodes n1…n5; n1 is index 0.
const N: usize = 5;
/// The two sides of the partition.
const LEFT: [usize; 2] = [0, 1];
const RIGHT: [usize; 3] = [2, 3, 4];
/// How often each poller asks `/primary`.
const POLL: Duration = Duration::from_millis(5);
/// Generous bound for anything that should happen within a second or two.
const SETTLE: Duration = Duration::from_secs(15);
/// Running before the cut, the least a cut lasts, and running after healing.
const BEFORE: Duration = Duration::from_secs(3);
const CUT: Duration = Duration::from_secs(3);
const AFTER: Duration = Duration::from_secs(2);
/// After this long on the minority side of a cut, a primary's lease (300 ms by default)
/// has certainly run out: no answer of 200 from a request sent later.
const LEASE_GONE: Duration = Duration::from_secs(1);
/// How long a cut side must have shown its primary before healing.
const HOLD: Duration = Duration::from_secs(1);

/// Prints a step of an experiment with the time since the test's first step.
fn step(t0: Instant, what: &str) {
    eprintln!("[{:>7.3}s] {what}", (now() - t0).as_secs_f64());
}

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

fn http_addrs(c: &TestCluster, n: usize) -> Vec<SocketAddr> {
    (0..n).map(|i| c.http_addr(i)).collect()
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

/// Every node of `0..n`.
fn every(n: usize) -> Vec<usize> {
    (0..n).collect()
}

/// Every node of `0..n` but `i`.
fn all_but(i: usize, n: usize) -> Vec<usize> {
    (0..n).filter(|&j| j != i).collect()
}

fn is_primary(c: &TestCluster, i: usize) -> bool {
    c.http(i, "GET", "/primary").is_ok_and(|r| r.status == 200)
}

/// Some node of `nodes` (not necessarily only one) answers `/primary` 200 now.
fn some_primary(c: &TestCluster, nodes: &[usize]) -> Option<usize> {
    nodes.iter().copied().find(|&i| is_primary(c, i))
}

/// Whether node `i` sees every node of `nodes` alive.
fn sees_alive(c: &TestCluster, i: usize, nodes: &[usize]) -> bool {
    nodes
        .iter()
        .all(|&j| c.state_of(i, c.id(j)).as_deref() == Some("alive"))
}

/// Node `i`'s `members` object of `/cluster`, if it answers.
fn members(c: &TestCluster, i: usize) -> Option<Value> {
    c.try_cluster(i).map(|doc| doc["members"].clone())
}

/// Node `i`'s `members.problem`, if it answers and has one.
fn problem(c: &TestCluster, i: usize) -> Option<String> {
    members(c, i).and_then(|m| m["problem"].as_str().map(str::to_owned))
}

/// Every node's `members` object, one line each, for failure messages.
fn members_lines(c: &TestCluster, nodes: &[usize]) -> String {
    nodes
        .iter()
        .map(|&i| match members(c, i) {
            Some(m) => format!("{}: {m}\n", c.id(i)),
            None => format!("{}: no /cluster\n", c.id(i)),
        })
        .collect()
}

/// The strings of a JSON array.
fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Whether every node of `nodes` holds the same agreed set, of `voters` voters, and the
/// primary among them (the node whose `/cluster` names itself) is committing no change:
/// the set is committed and all of them hold it. Only the primary's `members.change`
/// counts: a node that stopped being primary before its change was committed goes on
/// showing that change (the agent does not clear it when it steps down).
fn committed(c: &TestCluster, nodes: &[usize], voters: u64) -> bool {
    let Some(docs) = nodes
        .iter()
        .map(|&i| c.try_cluster(i))
        .collect::<Option<Vec<Value>>>()
    else {
        return false;
    };
    let stamp = &docs[0]["members"]["stamp"];
    stamp.as_str().is_some_and(|s| !s.is_empty())
        && docs
            .iter()
            .all(|d| d["voters"].as_u64() == Some(voters) && d["members"]["stamp"] == *stamp)
        && docs
            .iter()
            .filter(|d| d["primary"] == d["node"])
            .all(|d| d["members"]["change"].is_null())
}

/// Waits (polling every 10 ms) until [`committed`]; how long it took.
fn wait_committed(c: &TestCluster, nodes: &[usize], voters: u64) -> Duration {
    let clock = Stopwatch::start();
    assert!(
        wait_until_every(SETTLE, Duration::from_millis(10), || committed(
            c, nodes, voters
        )),
        "a set of {voters} voters was not committed and held by {nodes:?} within {SETTLE:?}:\n{}",
        members_lines(c, nodes)
    );
    clock.elapsed()
}

/// A member change as the test asks for it, and how to tell a set that has it.
struct Change {
    change: MemberChange,
    /// Whether a `members` object of `/cluster` shows the change made.
    shows: Box<dyn Fn(&Value) -> bool>,
}

impl Change {
    fn add(c: &TestCluster, i: usize) -> Self {
        let (node, addr) = (c.id(i).to_owned(), c.quic_addr(i).to_string());
        Self {
            change: MemberChange::Add {
                node: node.parse().expect("a node id"),
                addr: addr.clone(),
                voter: true,
            },
            shows: Box::new(move |m: &Value| {
                m["members"].as_array().is_some_and(|all| {
                    all.iter()
                        .any(|s| s["node"] == node.as_str() && s["addr"] == addr.as_str())
                })
            }),
        }
    }

    fn remove(c: &TestCluster, i: usize) -> Self {
        let node = c.id(i).to_owned();
        Self {
            change: MemberChange::Remove {
                node: node.parse().expect("a node id"),
            },
            shows: Box::new(move |m: &Value| {
                m["members"]
                    .as_array()
                    .is_some_and(|all| !all.iter().any(|s| s["node"] == node.as_str()))
            }),
        }
    }
}

/// How a change asked for went.
struct Committed {
    /// The primary's last answer (`Done`), and when it came.
    message: String,
    answered: Instant,
    /// From that answer until every node of `nodes` held the committed set.
    took: Duration,
    /// How often it was asked: an accepted change is lost when the primary that made it
    /// loses the role before a majority holds it (the next primary may not have it), and
    /// is then asked again, as an operator would.
    asked: usize,
}

/// Asks node `via` for `change` ([`member_done`]) and waits until it is committed and
/// held by every node of `nodes` (a set of `voters` voters that shows it); asks again
/// (at most 3 times) when a primary holds a set without it and commits nothing.
fn commit_change(
    c: &TestCluster,
    via: usize,
    change: &Change,
    nodes: &[usize],
    voters: u64,
) -> Committed {
    for asked in 1..=3 {
        let (message, answered) = member_done(c, via, &change.change);
        let mut lost = false;
        let done = wait_until_every(SETTLE, Duration::from_millis(10), || {
            let docs: Vec<Value> = nodes.iter().filter_map(|&i| c.try_cluster(i)).collect();
            lost = docs.iter().any(|d| {
                d["primary"] == d["node"]
                    && d["members"]["change"].is_null()
                    && !(change.shows)(&d["members"])
            });
            lost || (committed(c, nodes, voters)
                && docs.len() == nodes.len()
                && docs.iter().all(|d| (change.shows)(&d["members"])))
        });
        let took = now() - answered;
        if done && !lost {
            return Committed {
                message,
                answered,
                took,
                asked,
            };
        }
        assert!(
            lost,
            "member {} (answered {message:?}) was not committed and held by {nodes:?} within {SETTLE:?}:\n{}",
            change.change,
            members_lines(c, nodes)
        );
        eprintln!(
            "LOST: member {} (answered {message:?}) is not in the set of the primary {took:?} later, which commits nothing; asking again:\n{}",
            change.change,
            members_lines(c, nodes)
        );
    }
    panic!("member {} was lost three times", change.change);
}

/// Refusals that say "not now" rather than "no": no primary known yet, the primary
/// changed meanwhile, or a new primary is still committing its term's stamp.
const TRANSIENT: [&str; 3] = [
    "no primary is known",
    "no longer the primary",
    "still being committed",
];

/// Asks node `via` (over its operator channel) for `change`, until it is answered
/// `Done`, retrying (for up to [`SETTLE`]) only refusals that say "not now"; the answer
/// and when it came.
///
/// # Panics
///
/// On any other refusal, or if the operator channel fails.
fn member_done(c: &TestCluster, via: usize, change: &MemberChange) -> (String, Instant) {
    let clock = Stopwatch::start();
    loop {
        let outcome = c
            .ctl(via)
            .command(CtlCommand::Member(change.clone()))
            .unwrap_or_else(|e| panic!("member {change} asked of {}: {e}", c.id(via)));
        match outcome {
            Outcome::Done(message) => return (message, now()),
            Outcome::Refused(why)
                if TRANSIENT.iter().any(|t| why.contains(t)) && clock.elapsed() < SETTLE =>
            {
                eprintln!("member {change} asked of {}: {why}; retrying", c.id(via));
                std::thread::sleep(Duration::from_millis(200));
            }
            Outcome::Refused(why) => {
                panic!("member {change} asked of {} was refused: {why}", c.id(via))
            }
        }
    }
}

/// Starts n1–n3 (each listing the other two; n4 and n5 keep the builder's list of all
/// five and do not run yet) under pollers on every node's `/primary`, and waits for one
/// primary and a committed set.
fn start_three(c: &mut TestCluster) -> (PrimaryWatch, Instant) {
    for i in 0..3 {
        set_peers(c, i, &all_but(i, 3));
    }
    let watch = PrimaryWatch::start(&http_addrs(c, N), POLL);
    let started = now();
    for i in 0..3 {
        c.start(i);
    }
    assert!(
        wait_one_primary(&http_addrs(c, 3), SETTLE).is_some(),
        "no single primary among n1–n3 within {SETTLE:?}"
    );
    wait_committed(c, &[0, 1, 2], 3);
    (watch, started)
}

/// Named instants of an experiment; a phase runs from its mark to the next one.
type Marks = Vec<(&'static str, Instant)>;

/// The answers sent within `[from, to)`.
fn within(answers: &[Answer], from: Instant, to: Option<Instant>) -> Vec<Answer> {
    answers
        .iter()
        .filter(|a| a.sent >= from && to.is_none_or(|t| a.sent < t))
        .cloned()
        .collect()
}

/// The nodes that answered 200 to a request sent within `[from, to)`.
fn primaries_within(answers: &[Answer], from: Instant, to: Instant) -> Vec<usize> {
    let mut nodes: Vec<usize> = within(answers, from, Some(to))
        .iter()
        .filter(|a| a.is_primary())
        .map(|a| a.node)
        .collect();
    nodes.sort_unstable();
    nodes.dedup();
    nodes
}

/// The phases of `marks`, each with its end.
fn phases(marks: &Marks) -> Vec<(&'static str, Instant, Option<Instant>)> {
    marks
        .iter()
        .enumerate()
        .map(|(k, &(name, from))| (name, from, marks.get(k + 1).map(|m| m.1)))
        .collect()
}

/// What each node answered in each phase, for the test's output and failure messages:
/// `n1: before 412×200 (terms [3]), cut 0×200, …`.
fn summary(c: &TestCluster, n: usize, answers: &[Answer], marks: &Marks) -> String {
    let mut out = String::new();
    for i in 0..n {
        let mut line = format!("{}:", c.id(i));
        for (phase, from, to) in phases(marks) {
            let mut terms: Vec<u64> = Vec::new();
            let mut count = 0;
            for a in within(answers, from, to)
                .iter()
                .filter(|a| a.node == i && a.is_primary())
            {
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

/// Panics if the answers prove two primaries at once, naming the phases whose own
/// answers prove it.
fn assert_no_overlap(answers: &[Answer], marks: &Marks, summary: &str) {
    let Some(proof) = proven_overlap(answers) else {
        return;
    };
    let by_phase: Vec<String> = phases(marks)
        .into_iter()
        .filter_map(|(phase, from, to)| {
            proven_overlap(&within(answers, from, to)).map(|p| format!("{phase}: {p}"))
        })
        .collect();
    panic!(
        "two primaries at once: {proof}\nby phase:\n{}\n{summary}",
        by_phase.join("\n")
    );
}

/// Cuts {n1, n2} | {n3, n4, n5}; keeps the cut for at least [`CUT`], and until some
/// node of `side` has answered `/primary` 200 for [`HOLD`] (at most [`SETTLE`]); heals.
/// When the cut was made and when it was healed.
fn cut_until_primary_on(c: &TestCluster, side: &[usize]) -> (Instant, Instant) {
    let clock = Stopwatch::start();
    let cut_at = now();
    let partition =
        Partition::new(&quic_ports(c, &LEFT), &quic_ports(c, &RIGHT)).expect("nft rules");
    eprintln!("partitioned {LEFT:?} | {RIGHT:?} (node indices)");
    let seen = wait_until(SETTLE, || {
        // The other side's primary may still hold its lease for a moment.
        clock.elapsed() >= LEASE_GONE && some_primary(c, side).is_some()
    });
    let seen_at = clock.elapsed();
    std::thread::sleep(HOLD.max(CUT.saturating_sub(seen_at)));
    drop(partition);
    let healed_at = now();
    eprintln!(
        "healed after {:?} (a primary on {side:?}: {})",
        clock.elapsed(),
        if seen {
            format!("after {seen_at:?}")
        } else {
            "never".to_owned()
        }
    );
    (cut_at, healed_at)
}

/// Asserts that during the cut `[cut_at, healed_at)`, once [`LEASE_GONE`] had passed,
/// only nodes of `side` answered `/primary` 200, and one of them did.
fn assert_primary_only_on(
    answers: &[Answer],
    side: &[usize],
    (cut_at, healed_at): (Instant, Instant),
    what: &str,
    summary: &str,
) {
    let primaries = primaries_within(answers, cut_at + LEASE_GONE, healed_at);
    assert!(
        primaries.iter().all(|p| side.contains(p)),
        "{what}: nodes {primaries:?} answered /primary 200 during the cut (from {LEASE_GONE:?} in), only {side:?} may\n{summary}"
    );
    assert!(
        !primaries.is_empty(),
        "{what}: no node of {side:?} answered /primary 200 during the cut\n{summary}"
    );
}

/// Five fresh nodes; n1 and n2 list {n1, n2, n3}, n3–n5 list all five. Every node lists
/// some node whose list differs from its own, so none bootstraps: no cluster forms, no
/// node is ever primary (through a cut {n1, n2} | {n3, n4, n5} and after it), and every
/// node says why in `members.problem`.
#[test]
fn fresh_nodes_with_two_peer_lists_form_no_cluster_and_say_why() {
    if skipped() {
        return;
    }
    let mut c = TestCluster::builder(N).build();
    // The builder lists every other node; n1 and n2 get the short list.
    set_peers(&mut c, 0, &[1, 2]);
    set_peers(&mut c, 1, &[0, 2]);
    let watch = PrimaryWatch::start(&http_addrs(&c, N), POLL);
    let started = now();
    for i in 0..N {
        c.start(i);
    }
    let disagree = |c: &TestCluster, i: usize| {
        problem(c, i)
            .is_some_and(|p| p.contains("lists other peers") || p.contains("peers list differs"))
    };
    assert!(
        wait_until(SETTLE, || (0..N).all(|i| disagree(&c, i))),
        "not every node says its list disagrees within {SETTLE:?}:\n{}",
        members_lines(&c, &every(N))
    );
    eprintln!(
        "every node says its list disagrees after {:?}",
        now() - started
    );
    // Past the bootstrap wait, with margin: a majority with equal lists would have
    // bootstrapped by now.
    let quiet = BOOTSTRAP_WAIT + Duration::from_secs(2);
    if let Some(rest) = quiet.checked_sub(now() - started) {
        std::thread::sleep(rest);
    }
    let cut_at = now();
    let partition =
        Partition::new(&quic_ports(&c, &LEFT), &quic_ports(&c, &RIGHT)).expect("nft rules");
    std::thread::sleep(CUT);
    drop(partition);
    let healed_at = now();
    std::thread::sleep(AFTER);
    let answers = watch.finish();
    let marks: Marks = vec![("before", started), ("cut", cut_at), ("after", healed_at)];
    let summary = summary(&c, N, &answers, &marks);
    eprintln!("answers of /primary 200 per node and phase:\n{summary}");
    assert_no_overlap(&answers, &marks, &summary);
    assert!(
        !answers.iter().any(Answer::is_primary),
        "a node answered /primary 200, so a cluster formed from lists that disagree\n{summary}{}",
        members_lines(&c, &every(N))
    );
    // Sticky: still no set anywhere, and still saying why.
    for i in 0..N {
        let m = members(&c, i).unwrap_or_else(|| panic!("{} answers /cluster", c.id(i)));
        assert!(
            disagree(&c, i) && m["stamp"] == "",
            "{} after the cut: {m}",
            c.id(i)
        );
    }
    eprintln!("members.problem of n1: {:?}", problem(&c, 0));
}

/// The same five fresh nodes, started while {n1, n2} | {n3, n4, n5} is cut, and the cut
/// kept past the bootstrap wait: neither side sees a node whose list differs from its
/// own, and each side is a majority of its own lists, so each bootstraps a cluster (the
/// one case the bootstrap rule cannot tell apart from one host down at install; see the
/// operator guide). Once the cut heals, a node whose set names a node holding the other
/// cluster's set stands down: from then on, at most one primary, and they say why.
#[test]
fn fresh_nodes_with_two_peer_lists_cut_at_first_start_stand_down_when_they_meet() {
    if skipped() {
        return;
    }
    let mut c = TestCluster::builder(N).build();
    set_peers(&mut c, 0, &[1, 2]);
    set_peers(&mut c, 1, &[0, 2]);
    let partition =
        Partition::new(&quic_ports(&c, &LEFT), &quic_ports(&c, &RIGHT)).expect("nft rules");
    let watch = PrimaryWatch::start(&http_addrs(&c, N), POLL);
    let started = now();
    for i in 0..N {
        c.start(i);
    }
    std::thread::sleep(BOOTSTRAP_WAIT + Duration::from_secs(3));
    let in_cut = members_lines(&c, &every(N));
    drop(partition);
    let healed_at = now();
    std::thread::sleep(Duration::from_secs(3));
    let answers = watch.finish();
    // Detection takes a state fetch after the links come back: a second is plenty.
    let settled = healed_at + Duration::from_secs(1);
    let marks: Marks = vec![
        ("cut", started),
        ("healed", healed_at),
        ("settled", settled),
    ];
    let summary = summary(&c, N, &answers, &marks);
    eprintln!("answers of /primary 200 per node and phase:\n{summary}");
    eprintln!(
        "members in the cut:\n{in_cut}after healing:\n{}",
        members_lines(&c, &every(N))
    );
    let late = within(&answers, settled, None);
    assert!(
        proven_overlap(&late).is_none(),
        "two primaries after the clusters met: {:?}\n{summary}",
        proven_overlap(&late)
    );
    let foreign = |i: usize| problem(&c, i).is_some_and(|p| p.contains("another cluster"));
    assert!(
        foreign(0) && foreign(1),
        "n1 and n2 do not say they met another cluster:\n{}",
        members_lines(&c, &every(N))
    );
}

/// A running three-node cluster n1–n3; n3 is restarted (SIGTERM, same `state_dir`)
/// with a `peers` listing all five, and n4 and n5 start fresh with the five-node list.
/// The agreed voters stay {n1, n2, n3} (n4 and n5 are not members, and say so; n3
/// reports that its file lists n4 and n5), so in a cut {n1, n2} | {n3, n4, n5} only the
/// left side has a primary. Once healed, n4 and n5 are added with `member add`, one at
/// a time; in the same cut again, only the right side has a primary.
#[test]
fn a_longer_list_changes_nothing_until_the_new_nodes_are_added() {
    if skipped() {
        return;
    }
    let mut c = TestCluster::builder(N).build();
    // n1–n3 form the cluster; n4 and n5 have configs (and ports) but do not run yet.
    let (watch, started) = start_three(&mut c);
    step(started, "n1–n3 have a primary and a committed set");

    // The rolling edit, caught half-way: n3 and the two new nodes list all five.
    assert!(c.term(2).success(), "n3 exits 0 on SIGTERM");
    for i in 2..N {
        set_peers(&mut c, i, &all_but(i, N));
    }
    let restarted = now();
    for i in 2..N {
        c.start(i);
    }
    step(started, "n3 restarted, n4 and n5 started, all listing five");
    // n3 is back in the cluster (a member sees it alive); n4 and n5 learn that the
    // cluster's set does not include them; n3 reports its file's extra peers.
    assert!(
        wait_until(SETTLE, || {
            [0, 1]
                .iter()
                .any(|&i| c.state_of(i, "n3").as_deref() == Some("alive"))
        }),
        "neither n1 nor n2 sees the restarted n3 alive within {SETTLE:?}"
    );
    let not_a_member =
        |c: &TestCluster, i: usize| problem(c, i).is_some_and(|p| p.contains("does not include"));
    assert!(
        wait_until(SETTLE, || (3..N).all(|i| not_a_member(&c, i))),
        "n4 and n5 do not say they are not members within {SETTLE:?}:\n{}",
        members_lines(&c, &[3, 4])
    );
    let extra: Vec<String> = (3..N).map(|i| c.quic_addr(i).to_string()).collect();
    assert!(
        wait_until(SETTLE, || members(&c, 2).is_some_and(|m| {
            let only = strings(&m["only_in_peers"]);
            extra.iter().all(|a| only.contains(a)) && m["problem"].is_null()
        })),
        "n3's members.only_in_peers does not list n4 and n5 ({extra:?}), or n3 has a problem:\n{}",
        members_lines(&c, &[2])
    );
    wait_committed(&c, &[0, 1, 2], 3);
    step(
        started,
        "n4 and n5 are not members; n3 reports its file's extra peers",
    );
    if let Some(rest) = BEFORE.checked_sub(now() - restarted) {
        std::thread::sleep(rest);
    }

    // The agreed set is n1–n3: only {n1, n2} is a majority of it.
    let cut1 = cut_until_primary_on(&c, &LEFT);
    for i in 3..N {
        assert!(
            not_a_member(&c, i),
            "{} after the cut: {}",
            c.id(i),
            members_lines(&c, &[i])
        );
    }
    // A change is refused unless a majority of the new set is up to back the lease: wait
    // until the cut is forgotten.
    assert!(
        wait_until(SETTLE, || some_primary(&c, &every(N)).is_some()
            && [0, 1, 2].iter().all(|&i| sees_alive(&c, i, &[0, 1, 2]))),
        "no primary, or n1–n3 do not all see each other alive, within {SETTLE:?} of healing"
    );
    step(started, "healed, a primary again");

    // Added the way the operator guide says: one at a time, each committed first.
    let mut commit_times = Vec::new();
    for new in 3..N {
        let all: Vec<usize> = (0..=new).collect();
        let done = commit_change(&c, 0, &Change::add(&c, new), &all, new as u64 + 1);
        eprintln!(
            "member add {}: {}; committed and held by all {:?} after the answer (asked {}×)",
            c.id(new),
            done.message,
            done.took,
            done.asked
        );
        commit_times.push((c.id(new).to_owned(), done.took));
        step(started, &format!("{} added", c.id(new)));
    }
    assert!(
        wait_until(SETTLE, || (0..N).all(|i| problem(&c, i).is_none())),
        "not every node is a full voter within {SETTLE:?}:\n{}",
        members_lines(&c, &every(N))
    );
    step(started, "every node is a full voter");

    // Now {n3, n4, n5} is the majority.
    let cut2 = cut_until_primary_on(&c, &RIGHT);
    let primary_again = wait_until(SETTLE, || some_primary(&c, &every(N)).is_some());
    std::thread::sleep(AFTER);
    let answers = watch.finish();
    let marks: Marks = vec![
        ("start", started),
        ("restarted", restarted),
        ("cut", cut1.0),
        ("healed", cut1.1),
        ("cut-again", cut2.0),
        ("healed-again", cut2.1),
    ];
    let summary = summary(&c, N, &answers, &marks);
    eprintln!("answers of /primary 200 per node and phase:\n{summary}");
    eprintln!("member adds committed after: {commit_times:?}");
    assert_no_overlap(&answers, &marks, &summary);
    assert_primary_only_on(&answers, &LEFT, cut1, "agreed set n1–n3", &summary);
    assert_primary_only_on(&answers, &RIGHT, cut2, "agreed set n1–n5", &summary);
    assert!(
        primary_again,
        "no node was primary within {SETTLE:?} of healing the second cut\n{summary}"
    );
}

/// A running three-node cluster; n4 starts (fresh, listing all five) and is added, then
/// n5 the same way, each committed before the next; then a secondary is removed (and
/// stopped). Removing the primary is refused (transfer first). No two primaries
/// throughout; prints the handover gaps and how long each change took to commit.
#[test]
fn rolling_add_of_two_nodes_and_a_removal_never_overlaps() {
    let mut c = TestCluster::builder(N).build();
    let (watch, started) = start_three(&mut c);
    let mut marks: Marks = vec![("start", started)];
    let mut report = Vec::new();

    for new in 3..N {
        let name = c.id(new).to_owned();
        c.start(new);
        assert!(
            wait_until(SETTLE, || problem(&c, new).is_some()),
            "{name} does not answer /cluster within {SETTLE:?}"
        );
        let members_now: Vec<usize> = (0..new).collect();
        // Asked of a secondary, so the change is forwarded to the primary.
        let primary = some_primary(&c, &members_now);
        let via = members_now
            .iter()
            .copied()
            .find(|&i| Some(i) != primary)
            .expect("a secondary");
        marks.push(("add", now()));
        let all: Vec<usize> = (0..=new).collect();
        let Committed {
            message,
            answered,
            took,
            asked,
        } = commit_change(&c, via, &Change::add(&c, new), &all, new as u64 + 1);
        eprintln!(
            "member add {name} (asked of {}, {asked}×): {message}; committed and held by all {took:?} after the answer",
            c.id(via)
        );
        let full = Stopwatch::start();
        assert!(
            wait_until(SETTLE, || problem(&c, new).is_none()),
            "{name} does not become a full voter within {SETTLE:?}:\n{}",
            members_lines(&c, &[new])
        );
        report.push(format!(
            "add {name}: answered {:?} after first asking (asked {asked}×); committed on every node {took:?} after the answer; a full voter {:?} later",
            answered - marks[marks.len() - 1].1,
            full.elapsed()
        ));
    }

    // Removing the primary is refused: hand over first.
    let all: Vec<usize> = (0..N).collect();
    let clock = Stopwatch::start();
    loop {
        let primary = wait_one_primary(&http_addrs(&c, N), SETTLE).expect("a primary");
        let via = (primary + 1) % N;
        let remove_primary = MemberChange::Remove {
            node: c.id(primary).parse().expect("a node id"),
        };
        match c
            .ctl(via)
            .command(CtlCommand::Member(remove_primary))
            .expect("the operator channel")
        {
            Outcome::Refused(why)
                if TRANSIENT.iter().any(|t| why.contains(t)) && clock.elapsed() < SETTLE =>
            {
                eprintln!(
                    "member remove {} (the primary): {why}; retrying",
                    c.id(primary)
                );
                std::thread::sleep(Duration::from_millis(200));
            }
            Outcome::Refused(why) => {
                eprintln!("member remove {} (the primary): {why}", c.id(primary));
                assert!(why.contains("transfer"), "{why}");
                break;
            }
            Outcome::Done(m) => panic!("removing the primary {} was done: {m}", c.id(primary)),
        }
    }
    wait_committed(&c, &all, 5);
    let primary = wait_one_primary(&http_addrs(&c, N), SETTLE).expect("a primary");

    // Remove a secondary of the original three (asked of another secondary), then stop it.
    let victim = (0..3).find(|&i| i != primary).expect("a secondary");
    let via = (0..N)
        .find(|&i| i != primary && i != victim)
        .expect("another secondary");
    marks.push(("remove", now()));
    let rest: Vec<usize> = all_but(victim, N);
    let Committed {
        message,
        took,
        asked,
        ..
    } = commit_change(&c, via, &Change::remove(&c, victim), &rest, 4);
    eprintln!(
        "member remove {} (asked of {}, {asked}×): {message}; committed and held by the rest {took:?} after the answer",
        c.id(victim),
        c.id(via)
    );
    report.push(format!(
        "remove {}: committed on the rest {took:?} after the answer (asked {asked}×)",
        c.id(victim)
    ));
    let victim_sees = members(&c, victim);
    marks.push(("stop", now()));
    assert!(c.term(victim).success(), "{} exits 0", c.id(victim));
    let stopped = Stopwatch::start();
    assert!(
        wait_until(SETTLE, || some_primary(&c, &rest).is_some()),
        "no primary within {SETTLE:?} of stopping the removed node"
    );
    if let Some(rest) = AFTER.checked_sub(stopped.elapsed()) {
        std::thread::sleep(rest);
    }
    let answers = watch.finish();
    let summary = summary(&c, N, &answers, &marks);
    eprintln!("answers of /primary 200 per node and phase:\n{summary}");
    eprintln!("the removed {} held: {victim_sees:?}", c.id(victim));
    assert_no_overlap(&answers, &marks, &summary);
    wait_committed(&c, &rest, 4);

    let first = answers
        .iter()
        .find(|a| a.is_primary())
        .map(|a| a.sent)
        .expect("some node was primary");
    let gaps = gaps(&answers);
    let describe = |g: &quorate_tests::primary::Gap| {
        let phase = phases(&marks)
            .into_iter()
            .rev()
            .find(|(_, from, _)| *from <= g.from)
            .map_or("start", |p| p.0);
        format!(
            "{:?} at {:?} in phase {phase} ({} → {})",
            g.len(),
            g.from.saturating_duration_since(first),
            c.id(g.after),
            c.id(g.before)
        )
    };
    eprintln!("REPORT rolling add/remove:");
    for line in &report {
        eprintln!("  {line}");
    }
    eprintln!(
        "  longest stretches with no node answering /primary 200 (after the first primary; 5 ms polls):"
    );
    for g in gaps.iter().take(5) {
        eprintln!("    {}", describe(g));
    }
}

/// Three nodes; force-new-cluster is refused while the other voters answer. The primary
/// and another node are SIGKILLed; once the surviving secondary holds them dead,
/// force-new-cluster makes it the only voter and it is primary within seconds. The old
/// primary comes back with an emptied `state_dir`, listing the survivor: it is not a
/// member (and never primary) until `member add`, and then a voter of a set of two.
#[test]
fn force_new_cluster_recovers_a_lost_majority() {
    let mut c = TestCluster::builder(3).build();
    let watch = PrimaryWatch::start(&http_addrs(&c, 3), POLL);
    let started = now();
    for i in 0..3 {
        c.start(i);
    }
    let primary = wait_one_primary(&http_addrs(&c, 3), SETTLE)
        .unwrap_or_else(|| panic!("no single primary within {SETTLE:?}"));
    wait_committed(&c, &[0, 1, 2], 3);
    let survivor = (0..3).find(|&i| i != primary).expect("a secondary");
    let lost: Vec<usize> = all_but(survivor, 3);
    // The one brought back: the old primary.
    let back = primary;
    let (s_id, b_id) = (c.id(survivor).to_owned(), c.id(back).to_owned());

    match c
        .ctl(survivor)
        .command(CtlCommand::ForceNewCluster)
        .expect("the operator channel")
    {
        Outcome::Refused(why) => {
            eprintln!("force-new-cluster on {s_id} with every voter up: {why}");
            assert!(why.contains("still answer"), "{why}");
        }
        Outcome::Done(m) => panic!("force-new-cluster was done while every voter answers: {m}"),
    }

    let killed_at = now();
    for &i in &lost {
        c.kill(i);
    }
    // With the majority gone nobody can confirm a suspicion, so the survivor holds the
    // others `suspect`, not `dead`; force-new-cluster is refused until they have been
    // silent for `dead_after`, then done.
    assert!(
        wait_until(SETTLE, || {
            lost.iter()
                .all(|&i| c.state_of(survivor, c.id(i)).as_deref() != Some("alive"))
        }),
        "{s_id} still holds some of {lost:?} alive {SETTLE:?} after the kill"
    );
    let mut refusals = 0;
    let mut done = None;
    wait_until(SETTLE, || {
        match c
            .ctl(survivor)
            .command(CtlCommand::ForceNewCluster)
            .expect("the operator channel")
        {
            Outcome::Done(m) => done = Some(m),
            Outcome::Refused(why) => {
                assert!(why.contains("still answer"), "{why}");
                refusals += 1;
            }
        }
        done.is_some()
    });
    let forced_at = now();
    let m = done.unwrap_or_else(|| {
        panic!("force-new-cluster still refused {SETTLE:?} after the majority was killed")
    });
    eprintln!(
        "force-new-cluster on {s_id} done {:?} after the kill ({refusals} refusals before): {m}",
        forced_at - killed_at
    );
    assert!(
        wait_until(Duration::from_secs(5), || is_primary(&c, survivor)),
        "{s_id} is not primary within 5 s of force-new-cluster:\n{}",
        members_lines(&c, &[survivor])
    );
    eprintln!(
        "{s_id} answers /primary 200 {:?} after force-new-cluster",
        now() - forced_at
    );
    wait_committed(&c, &[survivor], 1);

    // The old primary comes back with an emptied state_dir, listing the survivor.
    let dir = c.config(back).state_dir.clone();
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        }
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
    set_peers(&mut c, back, &[survivor]);
    let back_at = now();
    c.start(back);
    let not_a_member =
        |c: &TestCluster| problem(c, back).is_some_and(|p| p.contains("does not include"));
    assert!(
        wait_until(SETTLE, || not_a_member(&c)),
        "{b_id} does not say it is not a member within {SETTLE:?}:\n{}",
        members_lines(&c, &[back, survivor])
    );
    assert!(
        wait_until(SETTLE, || c.state_of(survivor, &b_id).as_deref()
            == Some("alive")),
        "{s_id} does not see {b_id} alive within {SETTLE:?}"
    );
    // Long enough to have campaigned, had it been allowed to.
    std::thread::sleep(Duration::from_secs(1));
    assert!(not_a_member(&c), "{}", members_lines(&c, &[back]));
    let Committed {
        message,
        answered,
        took,
        asked,
    } = commit_change(&c, survivor, &Change::add(&c, back), &[back, survivor], 2);
    eprintln!(
        "member add {b_id} ({asked}×): {message}; committed and held by both {took:?} after the answer"
    );
    assert!(
        wait_until(SETTLE, || problem(&c, back).is_none()),
        "{b_id} does not become a full voter within {SETTLE:?}:\n{}",
        members_lines(&c, &[back])
    );
    let held = members(&c, survivor).expect("the survivor's /cluster");
    let mut voters: Vec<String> = held["members"]
        .as_array()
        .expect("members.members")
        .iter()
        .filter(|m| m["voter"] == true)
        .filter_map(|m| m["node"].as_str().map(str::to_owned))
        .collect();
    voters.sort();
    let mut expected = vec![s_id.clone(), b_id.clone()];
    expected.sort();
    assert_eq!(voters, expected, "{held}");
    assert!(
        wait_until(SETTLE, || some_primary(&c, &[back, survivor]).is_some()),
        "no primary among {b_id} and {s_id} within {SETTLE:?}"
    );
    std::thread::sleep(Duration::from_millis(500));

    let answers = watch.finish();
    let marks: Marks = vec![
        ("start", started),
        ("killed", killed_at),
        ("forced", forced_at),
        ("back", back_at),
        ("added", answered),
    ];
    let summary = summary(&c, 3, &answers, &marks);
    eprintln!("answers of /primary 200 per node and phase:\n{summary}");
    assert_no_overlap(&answers, &marks, &summary);
    assert!(
        !primaries_within(&answers, back_at, answered).contains(&back),
        "{b_id} answered /primary 200 before it was added\n{summary}"
    );
}

/// The documented way to add a node the running agents do not list: add its address to
/// `peers` on the primary and reload (`peers` is live), start the node, then
/// `member add`. Before the reload the cluster refuses the newcomer's connections; after
/// it, the newcomer learns the agreed set (and says it is not a member), the primary
/// reports its file lists an address outside the set, and the add is taken.
#[test]
fn a_reloaded_peers_admits_a_new_node_which_is_then_added() {
    let n = 4;
    let mut c = TestCluster::builder(n).build();
    for i in 0..3 {
        set_peers(&mut c, i, &all_but(i, 3));
    }
    for i in 0..3 {
        c.start(i);
    }
    let p = wait_one_primary(&http_addrs(&c, 3), SETTLE).expect("a primary among n1–n3");
    wait_committed(&c, &[0, 1, 2], 3);
    c.start(3);
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        c.state_of(p, c.id(3)).is_none(),
        "{} let n4 in before listing it",
        c.id(p)
    );
    // The primary's file now lists n4; SIGHUP applies it.
    set_peers(&mut c, p, &[all_but(p, 3), vec![3]].concat());
    c.signal(p, libc::SIGHUP);
    assert!(
        wait_until(SETTLE, || c.state_of(p, c.id(3)).as_deref()
            == Some("alive")),
        "n4 not admitted by {} after the reload:\n{}",
        c.id(p),
        c.log(p)
    );
    assert!(
        wait_until(SETTLE, || problem(&c, 3)
            .is_some_and(|m| m.contains("does not include this node"))),
        "n4 does not say it is not a member: {:?}",
        problem(&c, 3)
    );
    let n4 = c.quic_addr(3).to_string();
    assert!(
        wait_until(SETTLE, || members(&c, p)
            .is_some_and(|m| strings(&m["only_in_peers"]).contains(&n4))),
        "{} does not report that its peers list n4 outside the set",
        c.id(p)
    );
    let (message, _) = member_done(
        &c,
        p,
        &MemberChange::Add {
            node: proto::NodeId::new(c.id(3)).expect("a node id"),
            addr: n4.clone(),
            voter: true,
        },
    );
    eprintln!("member add n4: {message}");
    wait_committed(&c, &every(n), 4);
    assert!(wait_until(SETTLE, || problem(&c, 3).is_none()));
}
