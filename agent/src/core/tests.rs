//! Scenarios on a seeded micro-harness: nodes exchange datagrams in virtual time.

use std::time::{Duration, Instant};

use proto::{Datagram, Hello, Incarnation, Mode, NodeId, WallMicros};

use super::lease;
use super::*;

fn id(s: &str) -> NodeId {
    NodeId::new(s).unwrap()
}

/// A core with the agent's default timing (`config::Timing::default`).
/// Node `name` of n1, n2 and n3 at default timing (the operator channel's tests use it
/// too).
pub(crate) fn config(name: &str, incarnation: u64) -> CoreConfig {
    CoreConfig {
        node: id(name),
        incarnation: Incarnation(incarnation),
        mode: Mode::Member,
        priority: 100,
        advertise: format!("127.0.0.1:{name}"),
        bootstrap: ["n1", "n2", "n3"]
            .iter()
            .map(|n| format!("127.0.0.1:{n}"))
            .collect(),
        bootstrap_hash: [3; 8],
        timing: crate::config::Timing::default().core(),
        preempt: None,
        tasks: Vec::new(),
        task_return_delay: Duration::from_secs(30),
        fault: None,
    }
}

/// What every test node holds on disk: the agreed set of n1, n2 and n3, as bootstrapped.
fn agreed() -> HardState {
    HardState {
        members: voters::bootstrap_set(&config("n1", 1).bootstrap),
        ..HardState::default()
    }
}

fn hello(node: &Node) -> Hello {
    Hello {
        cluster: proto::ClusterName::new("t").unwrap(),
        node: node.id().clone(),
        incarnation: node.config().incarnation,
        advertise: format!("127.0.0.1:{}", node.id()),
        mode: Mode::Member,
    }
}

/// Nodes in virtual time; `up[i] == false` means node i is crashed (sends and hears nothing).
struct Harness {
    t0: Instant,
    now: Instant,
    nodes: Vec<Node>,
    up: Vec<bool>,
    /// One-way latency.
    latency: Duration,
    /// Every event each node emitted.
    events: Vec<Vec<Event>>,
    /// (delivery time, to, from, datagram)
    in_flight: Vec<(Instant, usize, NodeId, Datagram)>,
    /// Directed links that drop everything: (sender, receiver index).
    cut: Vec<(NodeId, usize)>,
    /// What each node's probes report.
    health: Vec<proto::HealthBits>,
    /// The digest each node announces: it changes with whom it suspects, as the agent's
    /// does, so peers fetch the new list.
    digests: Vec<proto::StateDigest>,
    /// Every heartbeat sent: (from, to, its announced interval in ms).
    beats: Vec<(String, String, u16)>,
    /// Every heartbeat sent: (when, from index, to index).
    beat_times: Vec<(Instant, usize, usize)>,
    /// How many times each node's timer ran out (`handle_timeout` was due): its
    /// wake-ups that no datagram caused.
    timeouts: Vec<usize>,
    /// Datagrams each node sent.
    sent: Vec<usize>,
}

/// The state node `n` serves to a fetch: its member set and whom it suspects.
fn served_state(n: &Node, wall: WallMicros) -> proto::NodeState {
    proto::NodeState {
        members: n.persisted().members.clone(),
        suspects: n
            .members()
            .filter(|m| matches!(m.state, MemberState::Suspect | MemberState::Dead))
            .map(|m| m.id.clone())
            .collect(),
        ..proto::NodeState::new(
            n.id().clone(),
            n.config().incarnation,
            n.config().advertise.clone(),
            Mode::Member,
            n.config().priority,
            wall,
        )
    }
}

impl Harness {
    fn new(names: &[&str]) -> Self {
        Self::holding(names, agreed())
    }

    /// Nodes `names`, each holding `hard` on disk.
    fn holding(names: &[&str], hard: HardState) -> Self {
        let t0 = crate::clock::now();
        let nodes: Vec<Node> = names
            .iter()
            .enumerate()
            .map(|(i, n)| Node::new(config(n, 1), t0, i as u64, hard.clone()))
            .collect();
        let mut h = Harness {
            t0,
            now: t0,
            up: vec![true; nodes.len()],
            events: vec![Vec::new(); nodes.len()],
            in_flight: Vec::new(),
            cut: Vec::new(),
            health: vec![proto::HealthBits::default(); nodes.len()],
            digests: vec![proto::StateDigest::default(); nodes.len()],
            beats: Vec::new(),
            beat_times: Vec::new(),
            timeouts: vec![0; nodes.len()],
            sent: vec![0; nodes.len()],
            nodes,
            latency: Duration::from_millis(1),
        };
        for i in 0..h.nodes.len() {
            for j in 0..h.nodes.len() {
                if i != j {
                    let hi = hello(&h.nodes[j]);
                    h.nodes[i].handle_hello(t0, &hi);
                }
            }
        }
        h
    }

    fn wall(&self) -> WallMicros {
        WallMicros(1_700_000_000_000_000 + self.now.duration_since(self.t0).as_micros() as u64)
    }

    fn idx(&self, name: &str) -> usize {
        self.nodes
            .iter()
            .position(|n| n.id().as_str() == name)
            .unwrap()
    }

    /// Runs for `d` of virtual time, delivering datagrams after `latency`.
    fn run(&mut self, d: Duration) {
        let end = self.now + d;
        let mut in_flight = std::mem::take(&mut self.in_flight);
        while self.now < end {
            let next_timer = self
                .nodes
                .iter()
                .enumerate()
                .filter(|(i, _)| self.up[*i])
                .filter_map(|(_, n)| n.poll_timeout())
                .min()
                .unwrap_or(end);
            let next_msg = in_flight.iter().map(|m| m.0).min().unwrap_or(end);
            self.now = next_timer.min(next_msg).min(end).max(self.now);
            let wall = self.wall();
            let now = self.now;
            let (due, rest): (Vec<_>, Vec<_>) = in_flight.into_iter().partition(|m| m.0 <= now);
            in_flight = rest;
            for (_, to, from, dg) in due {
                if self.up[to] && !self.cut.contains(&(from.clone(), to)) {
                    self.nodes[to].handle_datagram(now, wall, &from, dg);
                }
            }
            for i in 0..self.nodes.len() {
                if !self.up[i] {
                    continue;
                }
                if self.nodes[i].poll_timeout().is_some_and(|t| t <= now) {
                    self.timeouts[i] += 1;
                    self.nodes[i].handle_timeout(now, wall);
                }
                while let Some(hs) = self.nodes[i].poll_persist() {
                    self.nodes[i].handle_persisted(now, hs);
                }
                let from = self.nodes[i].id().clone();
                while let Some(t) = self.nodes[i].poll_transmit() {
                    self.sent[i] += 1;
                    let to = self.idx(t.to.as_str());
                    if let Datagram::Heartbeat(hb) = &t.datagram {
                        self.beats
                            .push((from.to_string(), t.to.to_string(), hb.interval_ms));
                        self.beat_times.push((now, i, to));
                    }
                    in_flight.push((now + self.latency, to, from.clone(), t.datagram));
                }
                // State fetches answer at once, with what the member set needs.
                let mut fetched = Vec::new();
                while let Some(target) = self.nodes[i].poll_fetch() {
                    fetched.push(self.idx(target.as_str()));
                }
                for t in fetched {
                    if self.up[t] {
                        let state = served_state(&self.nodes[t], WallMicros(0));
                        let from = self.nodes[t].id().clone();
                        self.nodes[i].handle_state(&from, state);
                    }
                }
                let digest = served_state(&self.nodes[i], WallMicros(0)).digest();
                if digest != self.digests[i] {
                    self.digests[i] = digest;
                    let health = self.health[i];
                    self.nodes[i].handle_local(now, health, Default::default(), digest);
                }
                while let Some(e) = self.nodes[i].poll_event() {
                    self.events[i].push(e);
                }
            }
            if self.now >= end {
                break;
            }
        }
        self.in_flight = in_flight;
    }

    fn state(&self, of: &str, seen_by: &str) -> MemberState {
        self.nodes[self.idx(seen_by)].member(&id(of)).unwrap().state
    }
}

#[test]
fn three_nodes_see_each_other_alive_and_quorate() {
    let mut h = Harness::new(&["n1", "n2", "n3"]);
    h.run(Duration::from_secs(5));
    for a in ["n1", "n2", "n3"] {
        for b in ["n1", "n2", "n3"] {
            if a != b {
                assert_eq!(h.state(a, b), MemberState::Alive, "{b} sees {a}");
            }
        }
        assert!(h.nodes[h.idx(a)].has_quorum());
    }
}

#[test]
fn crashed_node_becomes_suspect_then_dead_and_quorum_holds() {
    let mut h = Harness::new(&["n1", "n2", "n3"]);
    h.run(Duration::from_secs(5));
    h.up[2] = false;
    h.run(Duration::from_millis(900));
    assert_eq!(h.state("n3", "n1"), MemberState::Suspect);
    h.run(Duration::from_secs(3));
    assert_eq!(h.state("n3", "n1"), MemberState::Dead);
    assert_eq!(h.state("n3", "n2"), MemberState::Dead);
    assert!(h.nodes[0].has_quorum(), "two of three is a majority");
    h.up[1] = false;
    h.run(Duration::from_secs(4));
    assert!(!h.nodes[0].has_quorum(), "one of three is not");
}

/// Issue 11: `dead` needs a quorum's confirmation. n1 cannot hear n3 (the link is cut both
/// ways) while n2 hears both: n1 suspects n3 for as long as it likes, but never declares
/// it dead on its own; once n3 really stops, n2 confirms and n1 (and n2) mark it dead.
#[test]
fn a_node_that_cannot_hear_one_peer_does_not_declare_it_dead_alone() {
    let mut h = Harness::new(&["n1", "n2", "n3"]);
    h.run(Duration::from_secs(2));
    h.cut.push((id("n3"), 0));
    h.cut.push((id("n1"), 2));
    h.run(Duration::from_secs(6));
    assert_eq!(h.state("n3", "n1"), MemberState::Suspect);
    assert_eq!(h.state("n1", "n3"), MemberState::Suspect);
    assert_eq!(h.state("n3", "n2"), MemberState::Alive);
    assert!(
        !h.nodes[0].member(&id("n3")).unwrap().answers(),
        "silent here"
    );
    h.up[2] = false;
    h.run(Duration::from_secs(5));
    assert_eq!(h.state("n3", "n2"), MemberState::Dead);
    assert_eq!(h.state("n3", "n1"), MemberState::Dead);
}

/// Issue 11: "seen alive and eligible without a break". A node silent for longer than an
/// election timeout (a pause or a cut too short for suspicion) starts its eligibility
/// again from the heartbeat that ends the silence.
#[test]
fn eligibility_restarts_after_a_silence_longer_than_an_election_timeout() {
    let mut h = Harness::new(&["n1", "n2", "n3"]);
    h.make_eligible();
    h.run(Duration::from_secs(3));
    let since = |h: &Harness| h.nodes[0].member(&id("n3")).unwrap().eligible_since;
    assert!(since(&h).is_some(), "eligible");
    h.up[2] = false;
    h.run(Duration::from_millis(700));
    let back = h.now;
    h.up[2] = true;
    h.run(Duration::from_secs(1));
    let again = since(&h).expect("eligible again");
    assert!(again >= back, "counted from its return");
    assert_eq!(h.state("n3", "n1"), MemberState::Alive);
}

#[test]
fn restarted_node_is_alive_with_new_incarnation() {
    let mut h = Harness::new(&["n1", "n2", "n3"]);
    h.run(Duration::from_secs(2));
    h.up[2] = false;
    h.run(Duration::from_secs(4));
    assert_eq!(h.state("n3", "n1"), MemberState::Dead);
    let now = h.now;
    h.nodes[2] = Node::new(config("n3", 2), now, 99, agreed());
    h.up[2] = true;
    for i in 0..2 {
        let hi = hello(&h.nodes[2]);
        h.nodes[i].handle_hello(now, &hi);
        let hj = hello(&h.nodes[i]);
        h.nodes[2].handle_hello(now, &hj);
    }
    h.run(Duration::from_secs(1));
    let m = h.nodes[0].member(&id("n3")).unwrap();
    assert_eq!(m.state, MemberState::Alive);
    assert_eq!(m.incarnation, Incarnation(2));
}

#[test]
fn goodbye_marks_left_at_once_and_stays_left() {
    let mut h = Harness::new(&["n1", "n2"]);
    h.run(Duration::from_secs(1));
    let bye = h.nodes[1].goodbye();
    let now = h.now;
    let wall = h.wall();
    h.nodes[0].handle_datagram(now, wall, &id("n2"), bye);
    assert_eq!(h.state("n2", "n1"), MemberState::Left);
    h.up[1] = false;
    h.run(Duration::from_secs(5));
    assert_eq!(
        h.state("n2", "n1"),
        MemberState::Left,
        "left is not re-judged dead"
    );
}

#[test]
fn goodbye_from_another_node_or_incarnation_is_ignored() {
    let mut h = Harness::new(&["n1", "n2", "n3"]);
    h.run(Duration::from_secs(1));
    let bye = h.nodes[1].goodbye();
    let (now, wall) = (h.now, h.wall());
    // n3's connection cannot say goodbye for n2.
    h.nodes[0].handle_datagram(now, wall, &id("n3"), bye);
    assert_eq!(h.state("n2", "n1"), MemberState::Alive);
    h.nodes[0].handle_left(now, &id("n2"), Incarnation(7));
    assert_eq!(h.state("n2", "n1"), MemberState::Alive);
}

#[test]
fn rtt_and_offset_from_echoes() {
    let mut h = Harness::new(&["n1", "n2"]);
    h.latency = Duration::from_millis(5);
    h.run(Duration::from_secs(3));
    let m = h.nodes[0].member(&id("n2")).unwrap();
    let rtt = m.rtt.unwrap();
    assert!(
        (Duration::from_millis(9)..=Duration::from_millis(11)).contains(&rtt),
        "rtt {rtt:?}"
    );
    assert!(m.clock_offset_us.unwrap().abs() < 1000);
}

#[test]
fn heartbeats_from_the_wrong_connection_or_replayed_are_ignored() {
    let mut h = Harness::new(&["n1", "n2", "n3"]);
    h.run(Duration::from_secs(1));
    // Let n2 go silent, then replay an old heartbeat of n2's through n3's connection
    // and through n2's own: neither may revive it.
    h.up[1] = false;
    h.run(Duration::from_secs(4));
    assert_eq!(h.state("n2", "n1"), MemberState::Dead);
    let hb = Datagram::Heartbeat(proto::Heartbeat {
        node: id("n2"),
        incarnation: Incarnation(1),
        seq: proto::Seq(1),
        sent: h.wall(),
        interval_ms: 250,
        echo: None,
        term: proto::Term(0),
        primary: None,
        lease_ack: None,
        lease_ms: 300,
        promise_ms: 450,
        freeze: Default::default(),
        health: Default::default(),
        load: Default::default(),
        digest: Default::default(),
        config: agreed().members.stamp,
        tasks: None,
    });
    let (now, wall) = (h.now, h.wall());
    h.nodes[0].handle_datagram(now, wall, &id("n3"), hb.clone());
    assert_eq!(h.state("n2", "n1"), MemberState::Dead);
    h.nodes[0].handle_datagram(now, wall, &id("n2"), hb);
    assert_eq!(
        h.state("n2", "n1"),
        MemberState::Dead,
        "seq 1 was already seen"
    );
}

fn eligible() -> proto::HealthBits {
    proto::HealthBits(
        proto::HealthBits::READY | proto::HealthBits::HEALTHY | proto::HealthBits::ELIGIBLE,
    )
}

impl Harness {
    fn set_health(&mut self, i: usize, health: proto::HealthBits) {
        let now = self.now;
        self.health[i] = health;
        self.nodes[i].handle_local(now, health, Default::default(), self.digests[i]);
    }

    fn make_eligible(&mut self) {
        let now = self.now;
        for (i, n) in self.nodes.iter_mut().enumerate() {
            self.health[i] = eligible();
            n.handle_local(now, eligible(), Default::default(), self.digests[i]);
        }
    }

    fn holders(&self) -> Vec<String> {
        self.nodes
            .iter()
            .enumerate()
            .filter(|(i, n)| self.up[*i] && lease::holds(n.lease().as_ref(), self.now))
            .map(|(_, n)| n.id().to_string())
            .collect()
    }
}

#[test]
fn eligible_nodes_elect_exactly_one_primary_that_everyone_follows() {
    let mut h = Harness::new(&["n1", "n2", "n3"]);
    h.make_eligible();
    h.run(Duration::from_secs(3));
    let holders = h.holders();
    assert_eq!(holders.len(), 1, "{holders:?}");
    let p = id(&holders[0]);
    for n in &h.nodes {
        assert_eq!(n.primary(), Some(&p), "{} follows", n.id());
        assert_eq!(n.term(), h.nodes[0].term());
    }
}

#[test]
fn ineligible_nodes_never_campaign() {
    let mut h = Harness::new(&["n1", "n2", "n3"]);
    h.run(Duration::from_secs(5));
    assert!(h.holders().is_empty());
    assert!(h.nodes.iter().all(|n| n.term() == proto::Term(0)));
}

#[test]
fn primary_crash_elects_another_after_the_promise_runs_out() {
    let mut h = Harness::new(&["n1", "n2", "n3"]);
    h.make_eligible();
    h.run(Duration::from_secs(3));
    let old = h.holders()[0].clone();
    let i = h.idx(&old);
    h.up[i] = false;
    // Voters promised not to vote for an election timeout (450 ms): nobody wins sooner.
    h.run(Duration::from_millis(440));
    assert!(h.holders().is_empty(), "{:?}", h.holders());
    h.run(Duration::from_secs(2));
    let new = h.holders();
    assert_eq!(new.len(), 1);
    assert_ne!(new[0], old);
}

#[test]
fn transfer_hands_over_without_overlap() {
    let mut h = Harness::new(&["n1", "n2", "n3"]);
    h.make_eligible();
    h.run(Duration::from_secs(3));
    let old = h.holders()[0].clone();
    let target = ["n1", "n2", "n3"].into_iter().find(|n| *n != old).unwrap();
    let i = h.idx(&old);
    let now = h.now;
    h.nodes[i].handle_command(now, Command::Transfer(Some(id(target))));
    assert!(
        h.holders().is_empty(),
        "the old primary drops its lease first"
    );
    for _ in 0..100 {
        h.run(Duration::from_millis(1));
        assert!(h.holders().len() <= 1);
    }
    assert_eq!(h.holders(), vec![target.to_owned()]);
}

#[test]
fn vote_replies_wait_for_persistence() {
    let t0 = crate::clock::now();
    let mut voter = Node::new(config("n1", 1), t0, 1, agreed());
    let cand = hello_of("n2");
    voter.handle_hello(t0, &cand);
    let later = t0 + Duration::from_secs(1);
    let req = Datagram::Vote(proto::VoteRequest {
        term: proto::Term(1),
        candidate: id("n2"),
        transfer_from: None,
        req: proto::Seq(1),
        lease_ms: 300,
        config: agreed().members.stamp,
    });
    voter.handle_datagram(later, WallMicros(0), &id("n2"), req);
    assert!(
        voter.poll_transmit().is_none(),
        "nothing leaves before the vote is durable"
    );
    let hs = voter.poll_persist().expect("the vote must be persisted");
    assert_eq!(hs.term, proto::Term(1));
    assert_eq!(hs.voted_for, Some(id("n2")));
    voter.handle_persisted(later, hs);
    match voter.poll_transmit().map(|t| t.datagram) {
        Some(Datagram::VoteReply(r)) => assert!(r.granted),
        other => panic!("expected a granted vote, got {other:?}"),
    }
}

/// A node that has just started grants no vote for one election timeout (it may have
/// acknowledged a lease before it restarted); a request that arrives then is held, not
/// refused, and judged when the embargo ends (issue 11: a cold start's first campaign).
#[test]
fn a_just_started_node_grants_no_vote_until_its_embargo_ends() {
    let t0 = crate::clock::now();
    let mut voter = Node::new(config("n1", 1), t0, 1, agreed());
    voter.handle_hello(t0, &hello_of("n2"));
    let req = Datagram::Vote(proto::VoteRequest {
        term: proto::Term(1),
        candidate: id("n2"),
        transfer_from: None,
        req: proto::Seq(1),
        lease_ms: 300,
        config: agreed().members.stamp,
    });
    voter.handle_datagram(
        t0 + Duration::from_millis(100),
        WallMicros(0),
        &id("n2"),
        req,
    );
    assert!(voter.poll_persist().is_none());
    assert!(
        voter.poll_transmit().is_none(),
        "neither granted nor refused while embargoed"
    );
    let embargo_ends = t0 + voter.config().timing.election_timeout;
    assert!(voter.poll_timeout().is_some_and(|t| t <= embargo_ends));
    voter.handle_timeout(t0 + Duration::from_millis(200), WallMicros(0));
    assert!(voter.poll_persist().is_none(), "still embargoed");
    voter.handle_timeout(embargo_ends, WallMicros(0));
    let hs = voter.poll_persist().expect("the vote is recorded first");
    assert_eq!(hs.voted_for, Some(id("n2")));
    assert!(
        !voter
            .poll_transmit()
            .is_some_and(|t| matches!(t.datagram, Datagram::VoteReply(_))),
        "persist before the reply"
    );
    voter.handle_persisted(embargo_ends, hs);
    let replies: Vec<_> = std::iter::from_fn(|| voter.poll_transmit())
        .filter_map(|t| match t.datagram {
            Datagram::VoteReply(r) => Some(r),
            _ => None,
        })
        .collect();
    assert_eq!(replies.len(), 1);
    assert!(replies[0].granted);
}

#[test]
fn a_second_primary_claim_in_one_term_raises_split_brain_suspected() {
    let mut h = Harness::new(&["n1", "n2", "n3"]);
    h.make_eligible();
    h.run(Duration::from_secs(3));
    let primary = h.holders()[0].clone();
    let other = ["n1", "n2", "n3"]
        .into_iter()
        .find(|n| *n != primary)
        .unwrap();
    let liar = ["n1", "n2", "n3"]
        .into_iter()
        .find(|n| *n != primary && *n != other)
        .unwrap();
    let term = h.nodes[0].term();
    let claim = Datagram::Heartbeat(proto::Heartbeat {
        node: id(liar),
        incarnation: Incarnation(1),
        seq: proto::Seq(1_000_000),
        sent: h.wall(),
        interval_ms: 50,
        echo: None,
        term,
        primary: Some(id(liar)),
        lease_ack: None,
        lease_ms: 300,
        promise_ms: 450,
        freeze: Default::default(),
        health: Default::default(),
        load: Default::default(),
        digest: Default::default(),
        config: agreed().members.stamp,
        tasks: None,
    });
    let (now, wall) = (h.now, h.wall());
    let i = h.idx(other);
    h.nodes[i].handle_datagram(now, wall, &id(liar), claim);
    let raised = std::iter::from_fn(|| h.nodes[i].poll_event()).any(|e| {
        matches!(e, Event::SplitBrainSuspected { ref claimant, believed: Some(ref b), .. }
            if claimant.as_str() == liar && b.as_str() == primary)
    });
    assert!(raised);
    assert_eq!(
        h.nodes[i].primary(),
        Some(&id(&primary)),
        "the claim is not believed"
    );
}

fn hello_of(name: &str) -> Hello {
    Hello {
        cluster: proto::ClusterName::new("t").unwrap(),
        node: id(name),
        incarnation: Incarnation(1),
        advertise: format!("127.0.0.1:{name}"),
        mode: Mode::Member,
    }
}

#[test]
fn a_frozen_primary_that_turns_ineligible_stays_until_unfrozen_then_hands_over() {
    let mut h = Harness::new(&["n1", "n2", "n3"]);
    h.make_eligible();
    h.run(Duration::from_secs(3));
    let old = h.holders()[0].clone();
    let i = h.idx(&old);
    let freeze = |frozen, version: u64| {
        Command::Freeze(proto::FreezeFlag {
            frozen,
            version: 1_700_000_000_000_000 + version,
        })
    };
    let now = h.now;
    h.nodes[i].handle_command(now, freeze(true, 1));
    h.run(Duration::from_millis(500));
    h.set_health(i, proto::HealthBits::default());
    h.run(Duration::from_secs(2));
    // Frozen: nobody may campaign, so handing over would leave no primary at all.
    assert_eq!(h.holders(), vec![old.clone()]);
    assert!(h.events[i].iter().any(|e| matches!(
        e,
        Event::Refused { reason, .. } if reason.contains("frozen")
    )));
    let now = h.now;
    h.nodes[i].handle_command(now, freeze(false, 2));
    h.run(Duration::from_secs(2));
    let new = h.holders();
    assert_eq!(new.len(), 1, "{new:?}");
    assert_ne!(
        new[0], old,
        "the ineligible primary hands over once unfrozen"
    );
}

/// A voter whose promise (election timeout 200 ms, the fast preset) does not outlast a
/// candidate's or primary's lease (300 ms, the default) refuses the vote, follows the
/// primary without acknowledging its lease, and says why once.
#[test]
fn a_promise_shorter_than_the_lease_grants_no_vote_and_no_acknowledgement() {
    let t0 = crate::clock::now();
    let mut cfg = config("n1", 1);
    cfg.timing.election_timeout = Duration::from_millis(200);
    cfg.timing.lease = Duration::from_millis(150);
    let mut voter = Node::new(cfg, t0, 1, agreed());
    voter.handle_hello(t0, &hello_of("n2"));
    let later = t0 + Duration::from_secs(1);
    let vote = |lease_ms| {
        Datagram::Vote(proto::VoteRequest {
            term: proto::Term(1),
            candidate: id("n2"),
            transfer_from: None,
            req: proto::Seq(1),
            lease_ms,
            config: agreed().members.stamp,
        })
    };
    voter.handle_datagram(later, WallMicros(0), &id("n2"), vote(300));
    assert!(voter.poll_persist().is_none(), "no vote to make durable");
    match voter.poll_transmit().map(|t| t.datagram) {
        Some(Datagram::VoteReply(r)) => {
            assert!(!r.granted);
            assert_eq!(r.promise_ms, 200);
        }
        other => panic!("expected a refused vote, got {other:?}"),
    }
    let mismatch = std::iter::from_fn(|| voter.poll_event())
        .find(|e| matches!(e, Event::TimingMismatch { .. }));
    assert_eq!(
        mismatch,
        Some(Event::TimingMismatch {
            peer: id("n2"),
            lease_ms: 300,
            promise_ms: 200,
        })
    );

    // The primary of term 1 (with a 300 ms lease) is followed, never acknowledged.
    let hb = Datagram::Heartbeat(proto::Heartbeat {
        node: id("n2"),
        incarnation: Incarnation(1),
        seq: proto::Seq(7),
        sent: WallMicros(0),
        interval_ms: 50,
        echo: None,
        term: proto::Term(1),
        primary: Some(id("n2")),
        lease_ack: None,
        lease_ms: 300,
        promise_ms: 450,
        freeze: Default::default(),
        health: Default::default(),
        load: Default::default(),
        digest: Default::default(),
        config: agreed().members.stamp,
        tasks: None,
    });
    voter.handle_datagram(later, WallMicros(0), &id("n2"), hb);
    assert_eq!(voter.primary(), Some(&id("n2")));
    let acks: Vec<_> = std::iter::from_fn(|| voter.poll_transmit())
        .filter_map(|t| match t.datagram {
            Datagram::Heartbeat(h) => Some(h.lease_ack),
            _ => None,
        })
        .collect();
    assert!(
        !acks.is_empty() && acks.iter().all(Option::is_none),
        "{acks:?}"
    );

    // A fitting lease (150 ms) gets the vote.
    let mut fits = Node::new(
        CoreConfig {
            timing: Timing {
                election_timeout: Duration::from_millis(200),
                ..config("n1", 1).timing
            },
            ..config("n1", 1)
        },
        t0,
        1,
        agreed(),
    );
    fits.handle_hello(t0, &hello_of("n2"));
    fits.handle_datagram(later, WallMicros(0), &id("n2"), vote(150));
    assert!(fits.poll_persist().is_some(), "the vote is made durable");
}

/// The driving contract: a handover's TimeoutNow is queued in the very turn the lease is
/// dropped, so a driver that publishes its view before sending whenever the lease shrank
/// (`driver::lease_shrank`) never lets `/primary` answer from the old lease once the
/// successor may campaign.
#[test]
fn a_handover_drops_the_lease_in_the_turn_its_timeout_now_is_queued() {
    let mut h = Harness::new(&["n1", "n2", "n3"]);
    h.make_eligible();
    h.run(Duration::from_secs(3));
    let old = h.holders()[0].clone();
    let target = ["n1", "n2", "n3"].into_iter().find(|n| *n != old).unwrap();
    let i = h.idx(&old);
    let now = h.now;
    assert!(h.nodes[i].lease().is_some());
    h.nodes[i].handle_command(now, Command::Transfer(Some(id(target))));
    let mut timeout_now = 0;
    while let Some(t) = h.nodes[i].poll_transmit() {
        if matches!(t.datagram, Datagram::TimeoutNow(_)) {
            timeout_now += 1;
            assert!(
                h.nodes[i].lease().is_none(),
                "a TimeoutNow is queued while the core still reports a lease"
            );
        }
    }
    assert_eq!(timeout_now, 1);
}

/// A node of the agreed set, restarted without its vote record (a lost `election` file).
fn restart_without_vote_record(h: &mut Harness, i: usize) {
    let now = h.now;
    let name = h.nodes[i].id().to_string();
    h.nodes[i] =
        Node::new(config(&name, 2), now, 99, agreed()).with_lost_vote(now, LostVote::Missing);
    h.up[i] = true;
    for j in (0..h.nodes.len()).filter(|&j| j != i) {
        let hi = hello(&h.nodes[i]);
        h.nodes[j].handle_hello(now, &hi);
        let hj = hello(&h.nodes[j]);
        h.nodes[i].handle_hello(now, &hj);
    }
}

/// An idle follower wakes for its primary's heartbeats only: it answers each at once,
/// its slow heartbeats to the other followers leave in those same wake-ups, and no
/// fixed tick runs (the detector says when the next look is due). Its own timer runs
/// out only when something is late. The primary wakes on its lease-heartbeat timer.
#[test]
fn an_idle_follower_wakes_for_heartbeats_only() {
    let mut h = Harness::new(&["n1", "n2", "n3"]);
    h.make_eligible();
    h.run(Duration::from_secs(3));
    let p = h.idx(&h.holders()[0]);
    h.timeouts = vec![0; 3];
    h.sent = vec![0; 3];
    h.run(Duration::from_secs(10));
    for i in (0..3).filter(|&i| i != p) {
        // 20 acknowledgements a second and 4 slow heartbeats to the other follower.
        assert!(
            (235..=245).contains(&h.sent[i]),
            "follower n{} sent {}",
            i + 1,
            h.sent[i]
        );
        assert!(
            h.timeouts[i] <= 5,
            "follower n{} woke on its own timer {} times in 10 s",
            i + 1,
            h.timeouts[i]
        );
    }
    // One wake-up per beat (50 ms), checks included.
    assert!(
        (195..=205).contains(&h.timeouts[p]),
        "primary: {} timer wake-ups in 10 s",
        h.timeouts[p]
    );
}

/// Two followers beat in step on their slow link: the one with the lower id leads, the
/// other answers each heartbeat on receipt (so QUIC acknowledges it in that answer, not
/// in a packet of its own 25 ms later), and the rate stays one per interval each way.
#[test]
fn followers_answer_each_others_slow_heartbeats_in_step() {
    let mut h = Harness::new(&["n1", "n2", "n3"]);
    h.make_eligible();
    h.run(Duration::from_secs(3));
    let p = h.idx(&h.holders()[0]);
    let (lead, answer) = {
        let (x, y) = ((p + 1) % 3, (p + 2) % 3);
        (x.min(y), x.max(y))
    };
    h.beat_times.clear();
    h.run(Duration::from_secs(10));
    let between = |x: usize, y: usize| -> Vec<Instant> {
        h.beat_times
            .iter()
            .filter(|(_, f, t)| *f == x && *t == y)
            .map(|(at, _, _)| *at)
            .collect()
    };
    let (led, answers) = (between(lead, answer), between(answer, lead));
    for (dir, beats) in [("leader's", &led), ("answers", &answers)] {
        // 250 ms, and up to one lease interval late to ride the primary's beat.
        assert!(
            (33..=41).contains(&beats.len()),
            "{dir}: {} in 10 s",
            beats.len()
        );
    }
    let answered = led
        .iter()
        .filter(|t| answers.contains(&(**t + h.latency)))
        .count();
    assert!(
        answered + 1 >= led.len(),
        "{answered} of {} heartbeats answered on receipt",
        led.len()
    );
}

/// A voter that lost its vote record grants nothing while a voter it needs is silent
/// (here both others: in a three-voter set the majority of the others is all of them),
/// then counts the highest term it heard as voted in: no vote in that term, one above.
#[test]
fn a_lost_vote_record_votes_only_above_the_highest_term_heard() {
    let mut h = Harness::new(&["n1", "n2", "n3"]);
    h.make_eligible();
    h.run(Duration::from_secs(3));
    let p = h.idx(&h.holders()[0]);
    let victim = (p + 1) % 3;
    let silent = (p + 2) % 3;
    let term = h.nodes[p].term();
    assert!(term.0 >= 1);
    h.up[victim] = false;
    h.up[silent] = false;
    h.run(Duration::from_secs(1));
    restart_without_vote_record(&mut h, victim);
    assert_eq!(h.nodes[victim].term(), proto::Term(0));
    h.run(Duration::from_secs(10));
    let problem = h.nodes[victim].members_problem();
    assert!(
        matches!(&problem, Some(MembersProblem::Rejoining { waiting_for, .. })
            if waiting_for.len() == 1 && waiting_for[0].ends_with(&format!("n{}", silent + 1))),
        "{problem:?}"
    );
    let said: Vec<_> = h.events[victim]
        .iter()
        .filter(|e| matches!(e, Event::Rejoining { .. }))
        .collect();
    assert_eq!(said.len(), 1, "said once: {said:?}");
    // Rejoining, it votes for no one, even in a term far above.
    let ask = |node: &mut Node, term: u64, now: Instant| {
        node.handle_datagram(
            now,
            WallMicros(0),
            &id(&format!("n{}", silent + 1)),
            Datagram::Vote(proto::VoteRequest {
                term: proto::Term(term),
                candidate: id(&format!("n{}", silent + 1)),
                transfer_from: None,
                req: proto::Seq(term),
                lease_ms: 300,
                config: agreed().members.stamp,
            }),
        );
        while let Some(hs) = node.poll_persist() {
            node.handle_persisted(now, hs);
        }
        let mut granted = None;
        while let Some(t) = node.poll_transmit() {
            if let Datagram::VoteReply(r) = t.datagram {
                granted = Some(r.granted);
            }
        }
        granted
    };
    let now = h.now;
    assert_eq!(ask(&mut h.nodes[victim], term.0 + 5, now), Some(false));
    // The silent voter comes back (it knows the term); once heard, the floor is taken.
    h.up[silent] = true;
    h.run(Duration::from_secs(2));
    assert_eq!(
        h.nodes[victim].members_problem(),
        None,
        "{:?}",
        h.events[victim]
    );
    let floor = h.nodes[victim].term();
    assert!(floor >= term, "{floor:?} < {term:?}");
    assert!(
        h.events[victim]
            .iter()
            .any(|e| matches!(e, Event::Rejoined { heard: 2, .. })),
        "{:?}",
        h.events[victim]
    );
    // The floor counts as voted in, durably: nothing at or below it, ever.
    let persisted = h.nodes[victim].persisted();
    assert_eq!(persisted.term, floor);
    assert_eq!(persisted.voted_for, Some(id(&format!("n{}", victim + 1))));
    let now = h.now;
    assert_eq!(ask(&mut h.nodes[victim], floor.0, now), Some(false));
}

/// At `u64::MAX` a node never campaigns (the term would wrap) and says so once.
#[test]
fn a_node_at_the_last_term_never_campaigns_and_says_so_once() {
    let t0 = crate::clock::now();
    let hard = HardState {
        term: proto::Term(u64::MAX),
        ..agreed()
    };
    let mut node = Node::new(config("n1", 1), t0, 1, hard);
    node.handle_local(t0, eligible(), Default::default(), Default::default());
    let mut now = t0;
    let mut events = Vec::new();
    for _ in 0..50 {
        now += Duration::from_millis(200);
        node.handle_timeout(now, WallMicros(0));
        while let Some(e) = node.poll_event() {
            events.push(e);
        }
        while let Some(t) = node.poll_transmit() {
            assert!(
                !matches!(t.datagram, Datagram::PreVote(_) | Datagram::Vote(_)),
                "{t:?}"
            );
        }
    }
    assert_eq!(node.term(), proto::Term(u64::MAX));
    let exhausted = events
        .iter()
        .filter(|e| matches!(e, Event::TermExhausted { .. }))
        .count();
    assert_eq!(exhausted, 1, "{events:?}");
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, Event::ElectionStarted { .. }))
    );
}

/// n1–n3 voters, n4 and n5 non-voters, every node holding that set.
fn fleet() -> Harness {
    let names = ["n1", "n2", "n3", "n4", "n5"];
    let mut members = voters::bootstrap_set(
        &names
            .iter()
            .map(|n| format!("127.0.0.1:{n}"))
            .collect::<Vec<_>>(),
    );
    for slot in &mut members.members {
        let name = slot.addr.trim_start_matches("127.0.0.1:").to_owned();
        slot.voter = !matches!(name.as_str(), "n4" | "n5");
        slot.node = Some(id(&name));
    }
    let mut h = Harness::holding(
        &names,
        HardState {
            members,
            ..HardState::default()
        },
    );
    h.make_eligible();
    h
}

#[test]
fn a_non_voter_heartbeats_voters_only_and_the_primary_beats_fast_to_voters_only() {
    let mut h = fleet();
    h.run(Duration::from_secs(5));
    let voter = |n: &str| matches!(n, "n1" | "n2" | "n3");
    let between_non_voters: Vec<_> = h
        .beats
        .iter()
        .filter(|(f, t, _)| !voter(f) && !voter(t))
        .collect();
    assert!(between_non_voters.is_empty(), "{between_non_voters:?}");
    assert!(
        h.beats.iter().any(|(f, t, _)| f == "n4" && voter(t)),
        "a non-voter heartbeats the voters"
    );
    assert!(
        h.beats.iter().any(|(f, t, _)| voter(f) && t == "n5"),
        "voters heartbeat non-voters"
    );
    let holders = h.holders();
    assert_eq!(holders.len(), 1, "{holders:?}");
    let p = &holders[0];
    let fast = u16::try_from(
        crate::config::Timing::default()
            .core()
            .lease_heartbeat_interval
            .as_millis(),
    )
    .unwrap();
    h.beats.clear();
    h.run(Duration::from_secs(2));
    let fast_to: std::collections::BTreeSet<&str> = h
        .beats
        .iter()
        .filter(|(f, _, ms)| f == p && *ms == fast)
        .map(|(_, t, _)| t.as_str())
        .collect();
    let expected: std::collections::BTreeSet<&str> =
        ["n1", "n2", "n3"].into_iter().filter(|n| n != p).collect();
    assert_eq!(
        fast_to, expected,
        "the lease rate goes to the other voters only"
    );
    assert!(
        h.beats
            .iter()
            .all(|(f, t, ms)| voter(f) && voter(t) || *ms != fast),
        "nobody beats at the lease rate to or from a non-voter"
    );
    for n in ["n1", "n2", "n3", "n4", "n5"] {
        for of in ["n1", "n2", "n3", "n4", "n5"] {
            if n != of {
                assert_eq!(h.state(of, n), MemberState::Alive, "{n} sees {of}");
            }
        }
    }
    assert!(!h.nodes[h.idx("n4")].member(&id("n5")).unwrap().watched);
    assert!(h.nodes[h.idx("n1")].member(&id("n5")).unwrap().watched);
}

#[test]
fn a_non_voter_does_not_suspect_what_it_does_not_watch_and_the_voters_see_it_die() {
    let mut h = fleet();
    h.run(Duration::from_secs(5));
    let n5 = h.idx("n5");
    h.up[n5] = false;
    h.run(Duration::from_secs(5));
    for v in ["n1", "n2", "n3"] {
        assert_eq!(h.state("n5", v), MemberState::Dead, "{v} sees n5");
    }
    // Not n4's judgement: it stays as n4 last knew it, and unwatched.
    let seen = h.nodes[h.idx("n4")].member(&id("n5")).unwrap();
    assert!(!seen.watched && seen.state == MemberState::Alive);
}

#[test]
fn a_promoted_non_voter_talks_to_everyone_and_gets_the_lease_rate() {
    let mut h = fleet();
    h.run(Duration::from_secs(5));
    let p = h.idx(&h.holders()[0]);
    let now = h.now;
    h.nodes[p].handle_command(
        now,
        Command::Member {
            req: 1,
            change: voters::MemberChange::Promote { node: id("n4") },
        },
    );
    h.run(Duration::from_secs(3));
    assert!(
        h.nodes[h.idx("n4")]
            .agreed()
            .is_voter(&id("n4"), "127.0.0.1:n4")
    );
    h.beats.clear();
    h.run(Duration::from_secs(2));
    let fast = u16::try_from(
        crate::config::Timing::default()
            .core()
            .lease_heartbeat_interval
            .as_millis(),
    )
    .unwrap();
    let primary = h.nodes[p].id().to_string();
    assert!(
        h.beats.iter().any(|(f, t, _)| f == "n4" && t == "n5"),
        "n4 now beats n5"
    );
    assert!(
        h.beats.iter().any(|(f, t, _)| f == "n5" && t == "n4"),
        "n5 now beats n4"
    );
    assert!(
        h.beats
            .iter()
            .any(|(f, t, ms)| *f == primary && t == "n4" && *ms == fast),
        "the primary beats n4 at the lease rate"
    );
    assert_eq!(h.state("n5", "n4"), MemberState::Alive);
    assert!(h.nodes[h.idx("n4")].member(&id("n5")).unwrap().watched);
}
