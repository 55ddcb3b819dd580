//! Fixed clusters for the state, app and screen tests: healthy, failover in progress,
//! config drift, a hung mount, lost quorum, a member set the attached node disagrees with. Every time is an offset from [`t0`] and every
//! wall time a fixed day, so snapshots never change between runs.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use proto::ctl::{EventKind, EventRecord};
use proto::status::{
    BalancerStatus, ClusterStatus, ConfigStatus, DrainStatus, FileDrift, LoadStatus, MemberStatus,
    MembersStatus, MountStatus, NodeStatus, VersionStatus,
};

use super::state::{ConnStatus, State};

/// The one real instant the tests offset from; nothing on screen depends on its value.
#[allow(clippy::disallowed_methods)]
pub fn t0() -> Instant {
    static T0: OnceLock<Instant> = OnceLock::new();
    *T0.get_or_init(Instant::now)
}

/// 2025-06-01 08:00:00 UTC in microseconds.
const DAY: u64 = 1_748_764_800_000_000;

pub fn event(seq: u64, at_micros: u64, text: &str) -> EventRecord {
    EventRecord {
        seq,
        at_micros,
        recorded_by: "n1".into(),
        kind: EventKind::Membership,
        node: None,
        text: text.into(),
    }
}

fn ev(seq: u64, secs: u64, kind: EventKind, node: &str, text: &str) -> EventRecord {
    EventRecord {
        seq,
        at_micros: DAY + secs * 1_000_000,
        recorded_by: "n1".into(),
        kind,
        node: Some(node.into()),
        text: text.into(),
    }
}

fn strings(xs: &[&str]) -> Vec<String> {
    xs.iter().map(|s| s.to_string()).collect()
}

/// A healthy secondary `n{i}` at 10.0.0.{i}.
pub fn node(i: u64) -> NodeStatus {
    let name = format!("n{i}");
    let others: Vec<String> = (1..=3)
        .filter(|j| *j != i)
        .map(|j| format!("n{j}"))
        .collect();
    let f = i as f64;
    NodeStatus {
        node: name,
        addr: format!("10.0.0.{i}:7400"),
        state: "alive".into(),
        role: "secondary".into(),
        local: false,
        ready: true,
        healthy: true,
        draining: false,
        priority: 100,
        roles: strings(&["web"]),
        incarnation: i,
        rtt_ms: Some(0.2 + 0.1 * f),
        clock_offset_ms: Some(0.4 * f - 1.0),
        last_seen_ms: Some(80 + 40 * i),
        phi: Some(0.2 * f),
        load: LoadStatus {
            cpu: 0.08 + 0.17 * f,
            mem: 0.31 + 0.12 * f,
            load1: 0.25 + 0.6 * f,
        },
        checks: [
            ("app", "ok"),
            ("certs", "ok"),
            ("clock", "ok"),
            ("config", "ok"),
            ("mounts", "ok"),
        ]
        .into_iter()
        .map(|(k, v)| (k.into(), v.into()))
        .collect(),
        config: vec![ConfigStatus {
            name: "app".into(),
            hash: "9f2c41d0".into(),
            agrees_with: others,
            differs_from: vec![],
            status: "ok".into(),
            differing_files: vec![],
            acknowledged: None,
        }],
        mounts: vec![MountStatus {
            path: "/srv/data".into(),
            status: "ok".into(),
            source: Some("fs1:/export/data".into()),
            fstype: Some("nfs4".into()),
            reason: String::new(),
        }],
        version: VersionStatus {
            agent: "0.1.0".into(),
            app: Some("2.4.1".into()),
        },
        check_reasons: BTreeMap::new(),
        drain: None,
        balancer: Some(BalancerStatus {
            state: "UP".into(),
            balancer: Some("lb1".into()),
            weight: Some("100".into()),
            since: "2025-06-01T07:12:09Z".into(),
        }),
        suspected_by: Vec::new(),
        cert_expires: Some("2026-05-20T09:00:00Z".into()),
    }
}

fn find(s: &mut ClusterStatus, name: &str) -> usize {
    s.nodes.iter().position(|n| n.node == name).unwrap()
}

/// Makes `name` the answering node.
fn attach(s: &mut ClusterStatus, name: &str) {
    for n in &mut s.nodes {
        n.local = n.node == name;
        if n.local {
            n.last_seen_ms = None;
        } else if n.last_seen_ms.is_none() {
            n.last_seen_ms = Some(110);
        }
    }
    s.node = name.into();
}

/// Three healthy nodes, n1 primary, attached to n1.
pub fn healthy() -> ClusterStatus {
    let mut s = ClusterStatus {
        cluster: "prod".into(),
        node: "n1".into(),
        term: 7,
        primary: Some("n1".into()),
        quorum: true,
        frozen: false,
        voters: 3,
        nodes: (1..=3).map(node).collect(),
        unreachable_peers: vec![],
        tasks: vec![],
        pending_restart: vec![],
        timing_mismatch: vec![],
        members: Default::default(),
    };
    s.nodes[0].role = "primary".into();
    attach(&mut s, "n1");
    s
}

pub fn healthy_events() -> Vec<EventRecord> {
    vec![
        ev(
            1,
            0,
            EventKind::Membership,
            "n1",
            "n1 started (incarnation 1)",
        ),
        ev(2, 3, EventKind::Membership, "n2", "n2 is alive"),
        ev(3, 3, EventKind::Membership, "n3", "n3 is alive"),
        ev(
            4,
            5,
            EventKind::Election,
            "n1",
            "n1 became primary (term 7)",
        ),
    ]
}

/// n1 (the primary) died 2.6 s ago; n2 is a candidate in term 8; no primary yet.
/// Attached to n2.
pub fn failover() -> ClusterStatus {
    let mut s = healthy();
    attach(&mut s, "n2");
    s.term = 8;
    s.primary = None;
    let n1 = &mut s.nodes[0];
    // The agent calls a node primary only while it is alive.
    n1.role = "secondary".into();
    n1.state = "dead".into();
    n1.last_seen_ms = Some(2_600);
    n1.phi = Some(11.8);
    n1.rtt_ms = None;
    n1.suspected_by = vec!["n2".into(), "n3".into()];
    let n2 = &mut s.nodes[1];
    n2.role = "candidate".into();
    s.nodes[2].last_seen_ms = Some(200);
    s
}

pub fn failover_events() -> Vec<EventRecord> {
    let mut e = healthy_events();
    e.extend([
        ev(
            5,
            41,
            EventKind::Membership,
            "n1",
            "n1 is suspect (phi 8.4)",
        ),
        ev(
            6,
            42,
            EventKind::Membership,
            "n1",
            "n1 is dead (silent 2.1 s)",
        ),
        ev(
            7,
            42,
            EventKind::Election,
            "n2",
            "n2 started an election (term 8)",
        ),
    ]);
    e
}

/// n3 runs app 2.5.0 with a changed app.conf and an extra file; frozen for the upgrade.
/// Its certificate ends in 12 days (`certs` warns).
pub fn drift() -> ClusterStatus {
    let mut s = healthy();
    s.frozen = true;
    let conf = "/etc/app/app.conf";
    let extra = "/etc/app/conf.d/50-experimental-feature-flags.conf";
    for i in 0..2 {
        let me = s.nodes[i].node.clone();
        let other = if i == 0 { "n2" } else { "n1" };
        let c = &mut s.nodes[i].config[0];
        c.status = "drift".into();
        c.agrees_with = strings(&[other]);
        c.differs_from = strings(&["n3"]);
        c.differing_files = vec![
            FileDrift {
                path: conf.into(),
                hash: Some("a1b2c3".into()),
                agrees_with: strings(&[other]),
                differs_from: strings(&["n3"]),
                missing_on: vec![],
            },
            FileDrift {
                path: extra.into(),
                hash: None,
                agrees_with: strings(&[other]),
                differs_from: strings(&["n3"]),
                missing_on: {
                    let mut v = strings(&[&me, other]);
                    v.sort();
                    v
                },
            },
        ];
        s.nodes[i].checks.insert("config".into(), "drift".into());
    }
    let n3 = &mut s.nodes[2];
    n3.version.app = Some("2.5.0".into());
    // Its certificate was issued apart from the others' and ends first.
    n3.cert_expires = Some("2025-06-20T09:00:00Z".into());
    n3.checks.insert("certs".into(), "warn".into());
    n3.check_reasons.insert(
        "certs".into(),
        "certificate expires at 2025-06-20T09:00:00Z (in 12 days): renew it with `quorate ca renew`"
            .into(),
    );
    n3.checks.insert("config".into(), "drift".into());
    n3.check_reasons
        .insert("config".into(), "app: 2 files differ from n1, n2".into());
    let c = &mut n3.config[0];
    c.status = "drift".into();
    c.hash = "77e0a5f1".into();
    c.agrees_with = vec![];
    c.differs_from = strings(&["n1", "n2"]);
    c.differing_files = vec![
        FileDrift {
            path: conf.into(),
            hash: Some("7c1e09".into()),
            agrees_with: vec![],
            differs_from: strings(&["n1", "n2"]),
            missing_on: vec![],
        },
        FileDrift {
            path: extra.into(),
            hash: Some("51d0aa".into()),
            agrees_with: vec![],
            differs_from: strings(&["n1", "n2"]),
            missing_on: strings(&["n1", "n2"]),
        },
    ];
    s
}

pub fn drift_events() -> Vec<EventRecord> {
    let mut e = healthy_events();
    e.extend([
        ev(
            5,
            30,
            EventKind::Operator,
            "n1",
            "cluster frozen by alice (upgrade)",
        ),
        ev(
            6,
            38,
            EventKind::Check,
            "n3",
            "n3 runs app 2.5.0 (others 2.4.1)",
        ),
        ev(
            7,
            39,
            EventKind::Drift,
            "n3",
            "config set app drifts on n3: 2 files",
        ),
    ]);
    e
}

/// n2's NFS mount hangs: unhealthy, out of the balancer, drained by an operator.
pub fn hung_mount() -> ClusterStatus {
    let mut s = healthy();
    let i = find(&mut s, "n2");
    let n2 = &mut s.nodes[i];
    n2.healthy = false;
    n2.ready = false;
    n2.draining = true;
    n2.drain = Some(DrainStatus {
        reason: "nfs hang, investigating".into(),
        by: "alice".into(),
        since: "2025-06-01T08:00:39Z".into(),
        until: None,
    });
    n2.checks.insert("mounts".into(), "hung".into());
    let reason = "/srv/data: statfs did not answer within 5s";
    n2.check_reasons.insert("mounts".into(), reason.into());
    n2.mounts[0].status = "hung".into();
    n2.mounts[0].reason = "statfs did not answer within 5s".into();
    n2.mounts.push(MountStatus {
        path: "/var/lib/app".into(),
        status: "ok".into(),
        source: Some("/dev/mapper/vg0-app".into()),
        fstype: Some("xfs".into()),
        reason: String::new(),
    });
    n2.load.load1 = 14.2;
    n2.balancer = Some(BalancerStatus {
        state: "MAINT".into(),
        balancer: Some("lb1".into()),
        weight: Some("0".into()),
        since: "2025-06-01T08:00:40Z".into(),
    });
    s
}

pub fn hung_mount_events() -> Vec<EventRecord> {
    let mut e = healthy_events();
    e.extend([
        ev(5, 36, EventKind::Check, "n2", "n2 mounts: hung (/srv/data)"),
        ev(6, 36, EventKind::Check, "n2", "n2 is unhealthy: mounts"),
        ev(
            7,
            39,
            EventKind::Operator,
            "n2",
            "n2 drained by alice: nfs hang, investigating",
        ),
    ]);
    e
}

/// n3 was replaced by n4 (10.0.0.4, not up yet) in member set 7.5; attached to n3,
/// which is no longer a voter and whose `peers` still list the old set.
pub fn members_disagree() -> ClusterStatus {
    let mut s = healthy();
    attach(&mut s, "n3");
    let member = |node: &str, i: u8| MemberStatus {
        node: Some(node.into()),
        addr: format!("10.0.0.{i}:7400"),
        voter: true,
    };
    s.members = MembersStatus {
        stamp: "7.5".into(),
        members: vec![member("n1", 1), member("n2", 2), member("n4", 4)],
        problem: Some("not a voter in the agreed member set (removed, or a non-voter)".into()),
        only_in_peers: strings(&["10.0.0.3:7400"]),
        not_in_peers: strings(&["10.0.0.4:7400"]),
        change: None,
        unwatched: vec![],
    };
    s
}

/// n2 and n3 are gone; n1 alone has no quorum and stepped down. Attached to n1.
pub fn lost_quorum() -> ClusterStatus {
    let mut s = healthy();
    s.term = 9;
    s.primary = None;
    s.quorum = false;
    s.nodes[0].role = "secondary".into();
    for (i, seen) in [(1, 45_200), (2, 44_900)] {
        let n = &mut s.nodes[i];
        n.state = "dead".into();
        n.last_seen_ms = Some(seen);
        n.phi = Some(310.0);
        n.rtt_ms = None;
    }
    s.unreachable_peers = strings(&["10.0.0.4:7400"]);
    s
}

pub fn lost_quorum_events() -> Vec<EventRecord> {
    let mut e = healthy_events();
    e.extend([
        ev(
            5,
            1,
            EventKind::Membership,
            "n2",
            "n2 is dead (silent 2.0 s)",
        ),
        ev(
            6,
            1,
            EventKind::Membership,
            "n3",
            "n3 is dead (silent 2.0 s)",
        ),
        ev(
            7,
            1,
            EventKind::Alarm,
            "n1",
            "lost quorum (1/3 voters): n1 stepped down",
        ),
    ]);
    for e in &mut e[4..] {
        e.at_micros += 35_000_000;
    }
    e
}

/// When the fixtures' screens are drawn: 400 ms after the last snapshot.
pub fn now() -> Instant {
    t0() + Duration::from_millis(40_400)
}

/// A state as the TUI would have it after 40 s attached: 35 s of the healthy cluster
/// (with a load that moves, for the sparklines), then 5 s of `status`, then 400 ms.
pub fn state(status: ClusterStatus, events: Vec<EventRecord>) -> State {
    let local = status
        .nodes
        .iter()
        .find(|n| n.local)
        .map_or_else(|| status.node.clone(), |n| n.addr.clone());
    let mut st = State::new(
        t0(),
        ConnStatus::Connected {
            to: local,
            since: t0(),
        },
    );
    for k in 0..=40u64 {
        let mut s = if k < 35 { healthy() } else { status.clone() };
        if k < 35 {
            attach(&mut s, &status.node);
        }
        let wave = 0.55 + ((k * 7) % 10) as f64 / 10.0;
        for n in &mut s.nodes {
            if k < 40 {
                n.load.cpu = (n.load.cpu * wave).min(1.0);
                n.load.load1 *= wave;
            }
        }
        st.on_snapshot(t0() + Duration::from_secs(k), s);
    }
    for e in events {
        st.on_event(e);
    }
    st.tick(now());
    st
}
