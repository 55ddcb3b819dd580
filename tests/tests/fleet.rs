//! A fleet costs nodes × voters, not nodes² (issue 15): real agents on loopback, three
//! voters (n1–n3) and three non-voters (n4–n6) added with `member add --non-voter`, the
//! non-voters' `peers` listing the whole fleet (one file serving every node).
//!
//! - every node's `/cluster` holds all six in its member set and shows nobody down; a
//!   voter shows all six in `nodes`, a non-voter the voters and itself, and names the
//!   other non-voters in `members.unwatched`; `quorate status`'s verdict is `ok` on
//!   every node;
//! - no link stays up between two non-voters (a non-voter just started, holding no set
//!   yet, dials everyone; once it holds the set it closes those links, `Unneeded`):
//!   counted from the `link up` / `link closed` lines of the non-voters' debug log;
//! - a `spread` task and one preferring a non-voter each run on exactly one node (the
//!   non-voter's claim rests on the voters' grants);
//! - a non-voter killed is seen dead by the voters, and by no other non-voter.

// Test code: a failed setup step should stop the test with its error.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use proto::MemberChange;
use proto::ctl::CtlCommand;
use proto::status::{ClusterStatus, Level};
use quorate_agent::ctl::client::Outcome;
use quorate_tests::cluster::nodes;
use quorate_tests::{TestCluster, wait_until};
use serde_json::Value;

const SETTLE: Duration = Duration::from_secs(30);
const VOTERS: [usize; 3] = [0, 1, 2];
const NON_VOTERS: [usize; 3] = [3, 4, 5];

/// The nodes running `/task/{task}` (answering 200) now.
fn holders(c: &TestCluster, task: &str) -> Vec<usize> {
    (0..6)
        .filter(|&i| {
            c.http(i, "GET", &format!("/task/{task}"))
                .is_ok_and(|r| r.status == 200)
        })
        .collect()
}

/// Node `i`'s `/cluster` as the view the fleet should converge to, or why not yet.
fn converged(c: &TestCluster, i: usize) -> Result<(), String> {
    let cl = c.try_cluster(i).ok_or("no /cluster")?;
    let set = cl["members"]["members"].as_array().map_or(0, Vec::len);
    if set != 6 {
        return Err(format!("a set of {set}"));
    }
    let listed = nodes(&cl);
    if let Some(n) = listed.iter().find(|n| n["state"] != "alive") {
        return Err(format!("{} is {}", n["node"], n["state"]));
    }
    let unwatched: Vec<&str> = cl["members"]["unwatched"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let (want_nodes, want_unwatched) = if VOTERS.contains(&i) { (6, 0) } else { (4, 2) };
    if listed.len() != want_nodes || unwatched.len() != want_unwatched {
        return Err(format!(
            "{} nodes listed, unwatched {unwatched:?}",
            listed.len()
        ));
    }
    let status: ClusterStatus =
        serde_json::from_value(cl.clone()).map_err(|e| format!("/cluster: {e}"))?;
    let verdict = status.verdict();
    if verdict.level != Level::Ok {
        return Err(format!(
            "verdict {:?}: {:?}",
            verdict.level, verdict.findings
        ));
    }
    Ok(())
}

/// Links between node `i` and `peer` still up according to `i`'s debug log.
fn links_up(c: &TestCluster, i: usize, peer: &str) -> isize {
    let log = c.log(i);
    let field = format!("peer={peer}");
    let count = |what: &str| {
        log.lines()
            .filter(|l| l.contains(what) && l.contains(&field))
            .count() as isize
    };
    count("link up") - count("link closed")
}

fn add_non_voter(c: &TestCluster, i: usize) {
    let change = MemberChange::Add {
        node: c.id(i).parse().unwrap(),
        addr: c.quic_addr(i).to_string(),
        voter: false,
    };
    let done = wait_until(SETTLE, || {
        matches!(
            c.ctl(0).command(CtlCommand::Member(change.clone())),
            Ok(Outcome::Done(_))
        )
    });
    assert!(done, "member add {} --non-voter never done", c.id(i));
    // One change at a time: the next is refused until this one is committed.
    let committed = wait_until(SETTLE, || {
        c.try_cluster(0).is_some_and(|cl| {
            cl["members"]["members"]
                .as_array()
                .is_some_and(|m| m.iter().any(|s| s["node"] == c.id(i)))
                && cl["members"]["change"].is_null()
        })
    });
    assert!(committed, "adding {} never committed", c.id(i));
}

#[test]
fn three_voters_and_three_non_voters_talk_voters_only() {
    let mut c = TestCluster::builder(6)
        .extra_all(
            "[[task]]\nname = \"sweeper\"\nrun_on = \"spread\"\n\n\
             [[task]]\nname = \"pinned\"\nrun_on = \"prefer:n5,n4\"\n",
        )
        .build();
    // The voters bootstrap from their own three; the non-voters list the whole fleet.
    for v in VOTERS {
        let mut config = c.config(v).clone();
        config.peers = VOTERS
            .iter()
            .filter(|&&j| j != v)
            .map(|&j| c.quic_addr(j))
            .collect();
        c.set_config(v, config);
        c.start(v);
    }
    assert!(
        wait_until(SETTLE, || VOTERS.iter().all(|&v| c.is_ready(v))),
        "the voters never got ready"
    );
    for nv in NON_VOTERS {
        add_non_voter(&c, nv);
    }
    // The voters' files now list the fleet too (else `members.not_in_peers`), reloaded.
    for v in VOTERS {
        let mut config = c.config(v).clone();
        config.peers = (0..6).filter(|&j| j != v).map(|j| c.quic_addr(j)).collect();
        c.set_config(v, config);
        c.signal(v, libc::SIGHUP);
    }
    for nv in NON_VOTERS {
        c.set_env(nv, "QUORATE_LOG", "info,quorate_agent::net=debug");
        c.start(nv);
    }
    let mut why = String::new();
    let ok = wait_until(SETTLE, || {
        for i in 0..6 {
            if let Err(e) = converged(&c, i) {
                why = format!("{}: {e}", c.id(i));
                return false;
            }
        }
        true
    });
    if !ok {
        c.dump();
        panic!("the fleet never converged: {why}");
    }

    // Links a non-voter made before it held the set are closed once it does.
    let closed = wait_until(SETTLE, || {
        NON_VOTERS.iter().all(|&a| {
            NON_VOTERS
                .iter()
                .filter(|&&b| b != a)
                .all(|&b| links_up(&c, a, c.id(b)) == 0)
        })
    });
    if !closed {
        c.dump();
        panic!("a link between two non-voters stayed up");
    }
    for a in NON_VOTERS {
        for v in VOTERS {
            assert!(
                links_up(&c, a, c.id(v)) > 0,
                "{} has no link to {}",
                c.id(a),
                c.id(v)
            );
        }
    }

    for (task, want) in [("sweeper", None), ("pinned", Some(4))] {
        let mut last = Vec::new();
        let one = wait_until(SETTLE, || {
            last = holders(&c, task);
            last.len() == 1 && want.is_none_or(|w| last == [w])
        });
        assert!(
            one,
            "task {task} runs on {last:?}, not on one node (wanted {want:?})"
        );
    }

    c.kill(5);
    let seen = wait_until(SETTLE, || {
        VOTERS
            .iter()
            .all(|&v| c.state_of(v, "n6").as_deref() == Some("dead"))
    });
    assert!(seen, "the voters never saw n6 dead");
    for nv in [3, 4] {
        let cl = c.cluster(nv);
        let down: Vec<&Value> = nodes(&cl)
            .into_iter()
            .filter(|n| n["state"] != "alive")
            .collect();
        assert!(down.is_empty(), "{} shows {down:?}", c.id(nv));
    }
}
