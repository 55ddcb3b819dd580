//! Scenarios on a seeded micro-harness: nodes exchange datagrams in virtual time.

use std::time::{Duration, Instant};

use proto::{Datagram, Hello, Incarnation, Mode, NodeId, WallMicros};

use super::*;

fn id(s: &str) -> NodeId {
    NodeId::new(s).unwrap()
}

fn config(name: &str, incarnation: u64) -> CoreConfig {
    CoreConfig {
        node: id(name),
        incarnation: Incarnation(incarnation),
        mode: Mode::Member,
        priority: 100,
        voters: 3,
        heartbeat_interval: Duration::from_millis(250),
        lease_heartbeat_interval: Duration::from_millis(50),
        lease: Duration::from_millis(300),
        election_timeout: Duration::from_millis(450),
        phi_threshold: 8.0,
        dead_after: Duration::from_secs(2),
        preempt: None,
        fault: None,
    }
}

fn hello(node: &Node) -> Hello {
    Hello {
        cluster: proto::ClusterName::new("t").unwrap(),
        node: node.id().clone(),
        incarnation: node.config().incarnation,
        advertise: format!("127.0.0.1:{}", 7700 + node.id().as_str().len()),
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
}

impl Harness {
    fn new(names: &[&str]) -> Self {
        let t0 = Instant::now();
        let nodes: Vec<Node> = names
            .iter()
            .enumerate()
            .map(|(i, n)| Node::new(config(n, 1), t0, i as u64, HardState::default()))
            .collect();
        let mut h = Harness {
            t0,
            now: t0,
            up: vec![true; nodes.len()],
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
        let mut in_flight: Vec<(Instant, usize, NodeId, Datagram)> = Vec::new();
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
                if self.up[to] {
                    self.nodes[to].handle_datagram(now, wall, &from, dg);
                }
            }
            for i in 0..self.nodes.len() {
                if !self.up[i] {
                    continue;
                }
                if self.nodes[i].poll_timeout().is_some_and(|t| t <= now) {
                    self.nodes[i].handle_timeout(now, wall);
                }
                while let Some(hs) = self.nodes[i].poll_persist() {
                    self.nodes[i].handle_persisted(now, hs);
                }
                let from = self.nodes[i].id().clone();
                while let Some(t) = self.nodes[i].poll_transmit() {
                    let to = self.idx(t.to.as_str());
                    in_flight.push((now + self.latency, to, from.clone(), t.datagram));
                }
                while self.nodes[i].poll_fetch().is_some() {}
                while self.nodes[i].poll_event().is_some() {}
            }
            if self.now >= end {
                break;
            }
        }
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

#[test]
fn restarted_node_is_alive_with_new_incarnation() {
    let mut h = Harness::new(&["n1", "n2", "n3"]);
    h.run(Duration::from_secs(2));
    h.up[2] = false;
    h.run(Duration::from_secs(4));
    assert_eq!(h.state("n3", "n1"), MemberState::Dead);
    let now = h.now;
    h.nodes[2] = Node::new(config("n3", 2), now, 99, HardState::default());
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
        freeze: Default::default(),
        health: Default::default(),
        load: Default::default(),
        digest: Default::default(),
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
