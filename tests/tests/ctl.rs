//! The operator channel (`quorate-ctl/1`) with real agents, real QUIC and real mutual
//! TLS (issue 5 acceptance): a subscription's snapshot and updates through a failover,
//! the event journal across a restart, every command end to end with its refusals,
//! certificates of another CA, callers outside `control_allow`, and malformed requests.
//!
//! Bounds are generous (a noisy 2-core CI box).

// Test code: a failed setup step should stop the test with its error.
#![allow(clippy::unwrap_used)]

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use proto::ctl::{CtlCommand, CtlRequest, CtlResponse, EventRecord};
use quorate_agent::config::TlsPaths;
use quorate_agent::ctl::client::blocking::Client;
use quorate_agent::ctl::client::{Outcome, Update};
use quorate_tests::primary::{current_primary, wait_one_primary};
use quorate_tests::{Stopwatch, TestCluster, bin, ca_init, run_ok, wait_until};

const SETTLE: Duration = Duration::from_secs(20);

fn addrs(c: &TestCluster) -> Vec<SocketAddr> {
    (0..c.members()).map(|i| c.http_addr(i)).collect()
}

fn one_primary(c: &TestCluster) -> usize {
    wait_one_primary(&addrs(c), SETTLE).expect("no single primary")
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `quorate events --json` on node `i`, parsed.
fn events(c: &TestCluster, i: usize) -> Vec<EventRecord> {
    let out = c.quorate(i, &["events", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn tls(dir: &Path, name: &str, ca: &Path) -> TlsPaths {
    TlsPaths {
        ca: ca.to_path_buf(),
        cert: dir.join(format!("{name}.pem")),
        key: dir.join(format!("{name}.key")),
    }
}

fn issue_operator(dir: &Path, name: &str) {
    run_ok(
        Command::new(bin("quorate"))
            .args(["ca", "issue", "--dir"])
            .arg(dir)
            .args(["--operator", name]),
    );
}

#[test]
fn a_subscription_gets_a_snapshot_at_once_then_the_new_primary_after_a_kill() {
    let mut c = TestCluster::new(3);
    let p = one_primary(&c);
    let watcher = (p + 1) % 3;
    let client = c.ctl(watcher);
    let mut sub = client.subscribe().unwrap();
    let clock = Stopwatch::start();
    let first = match sub.next(Duration::from_secs(2)).unwrap() {
        Some(Update::Snapshot(s)) => s,
        other => panic!("expected a snapshot first, got {other:?}"),
    };
    assert!(
        clock.elapsed() < Duration::from_secs(1),
        "{:?}",
        clock.elapsed()
    );
    assert_eq!(first.status.node, c.id(watcher));
    assert_eq!(first.status.primary.as_deref(), Some(c.id(p)));
    // The snapshot is the `/cluster` document, field for field.
    let snap: serde_json::Value = serde_json::from_str(&first.json).unwrap();
    let http = c.cluster(watcher);
    let keys = |v: &serde_json::Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&snap), keys(&http));
    assert_eq!(snap["nodes"].as_array().unwrap().len(), 3);

    // Snapshots keep coming (at least every 2 s); then the primary is killed.
    let mut last_snapshot = Stopwatch::start();
    let mut longest = Duration::ZERO;
    let mut saw = |sub: &mut quorate_agent::ctl::client::blocking::BlockingSubscription<'_>,
                   until: Duration,
                   done: &mut dyn FnMut(&Update) -> bool| {
        let clock = Stopwatch::start();
        let mut events = Vec::new();
        while clock.elapsed() < until {
            let Some(u) = sub.next(Duration::from_secs(3)).unwrap() else {
                panic!("the subscription ended");
            };
            if matches!(u, Update::Snapshot(_)) {
                longest = longest.max(last_snapshot.elapsed());
                last_snapshot = Stopwatch::start();
            }
            if let Update::Event(e) = &u {
                events.push(e.text.clone());
            }
            if done(&u) {
                return Some(events);
            }
        }
        None
    };
    saw(&mut sub, Duration::from_secs(3), &mut |_| false);
    let killed = c.id(p).to_owned();
    c.kill(p);
    let clock = Stopwatch::start();
    let events = saw(&mut sub, Duration::from_secs(10), &mut |u| match u {
        Update::Snapshot(s) => s.status.primary.as_ref().is_some_and(|n| *n != killed),
        Update::Event(_) => false,
    })
    .expect("no snapshot with a new primary within 10 s");
    println!(
        "new primary in a snapshot {:?} after the kill; longest gap between snapshots {longest:?}; events: {events:?}",
        clock.elapsed()
    );
    assert!(longest <= Duration::from_millis(2600), "{longest:?}");
    assert!(
        events.iter().any(|e| e.contains("primary")),
        "the failover's events came with the snapshots: {events:?}"
    );
}

#[test]
fn the_event_journal_survives_a_restart_and_numbers_on() {
    let mut c = TestCluster::new(3);
    one_primary(&c);
    assert!(c.wait_converged(SETTLE));
    let before = events(&c, 0);
    assert!(
        before.iter().any(|e| e.text.starts_with("n1 started")),
        "{before:#?}"
    );
    assert!(before.iter().all(|e| e.recorded_by == "n1"));
    assert!(
        before.windows(2).all(|w| w[0].seq < w[1].seq),
        "{before:#?}"
    );
    let last = before.last().unwrap().seq;

    assert!(c.term(0).success());
    c.start(0);
    assert!(wait_until(SETTLE, || c.is_ready(0)));
    let after = events(&c, 0);
    // What happened before the restart is still there, with the same numbers.
    for e in &before {
        assert!(after.contains(e), "lost {e:?} across the restart");
    }
    let stopped = after
        .iter()
        .find(|e| e.text == "n1 stopped cleanly")
        .expect("the clean stop was recorded");
    let restarted = after
        .iter()
        .rfind(|e| e.text.starts_with("n1 started"))
        .unwrap();
    assert!(
        last < stopped.seq && stopped.seq < restarted.seq,
        "{after:#?}"
    );

    // The human form: a header and one line per event.
    let out = c.quorate(0, &["events"]);
    assert!(out.status.success(), "{}", text(&out));
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.starts_with("   SEQ  TIME (UTC)"), "{table}");
    assert!(table.contains("n1 stopped cleanly"), "{table}");
}

#[test]
fn every_command_end_to_end_with_clear_refusals() {
    let root = tempfile::tempdir().unwrap();
    let conf = root.path().join("app.xml");
    std::fs::write(&conf, "<setting/>\n").unwrap();
    let c = TestCluster::builder(3)
        .extra(
            0,
            &format!(
                "[[config]]\nname = \"app-config\"\npaths = [\"{}\"]\n",
                conf.display()
            ),
        )
        // n3's app is down: it can never be primary.
        .extra(
            2,
            "[app]\ncheck = \"tcp://127.0.0.1:1\"\ninterval = \"200ms\"\ntimeout = \"1s\"\n",
        )
        .start();
    let p = one_primary(&c);
    assert_ne!(p, 2, "n3 has a failing app check");
    let other = 1 - p;
    assert!(wait_until(SETTLE, || {
        c.member(0, "n3")
            .is_some_and(|m| m["checks"]["app"] == "fail")
    }));

    // transfer: refused with the reason, nothing moves.
    let out = c.quorate(0, &["transfer", "n3"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        stderr(&out).contains("n3 is not eligible: app check failing"),
        "{}",
        text(&out)
    );
    let out = c.quorate(0, &["transfer", "n9"]);
    assert!(
        stderr(&out).contains("no node n9 in this cluster"),
        "{}",
        text(&out)
    );
    assert_eq!(current_primary(&addrs(&c)), Some(p));

    // freeze: a transfer is then refused; unfreeze.
    let out = c.quorate(2, &["freeze"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("cluster frozen"));
    assert!(wait_until(SETTLE, || c.cluster(other)["frozen"] == true));
    let out = c.quorate(other, &["transfer", c.id(other)]);
    assert!(stderr(&out).contains("frozen"), "{}", text(&out));
    let out = c.quorate(0, &["unfreeze"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(wait_until(SETTLE, || (0..3).all(|i| c.cluster(i)["frozen"] == false)));

    // transfer to an eligible node, asked on the node that cannot take it.
    let out = c.quorate(2, &["transfer", c.id(other)]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!("→ {}", c.id(other))),
        "{}",
        text(&out)
    );
    assert!(wait_until(SETTLE, || current_primary(&addrs(&c)) == Some(other)));

    // drain and undrain another node.
    let out = c.quorate(0, &["drain", "n3", "--reason", "disk swap", "--for", "1h"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(wait_until(SETTLE, || c.member(2, "n3").is_some_and(|m| m
        ["draining"]
        == true
        && m["drain"]["by"] == "node n1"
        && m["drain"]["reason"] == "disk swap")));
    let out = c.quorate(1, &["undrain", "n3"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = c.quorate(0, &["drain", "n3", "--reason", &"x".repeat(300)]);
    assert!(stderr(&out).contains("longer than 200"), "{}", text(&out));

    // drift ack: a configured set, and one that is not.
    let out = c.quorate(
        0,
        &[
            "drift",
            "ack",
            "app-config",
            "--for",
            "2h",
            "--reason",
            "mid-upgrade",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("drift in app-config acknowledged"));
    let out = c.quorate(0, &["drift", "ack", "nope", "--for", "2h", "--reason", "x"]);
    assert!(
        stderr(&out).contains("no [[config]] set named \"nope\""),
        "{}",
        text(&out)
    );

    // upgrade allow: refused while the node's app version is unknown; status works.
    let out = c.quorate(1, &["upgrade", "allow"]);
    assert!(
        stderr(&out).contains("app version is not known"),
        "{}",
        text(&out)
    );
    let out = c.quorate(1, &["upgrade", "status"]);
    assert!(out.status.success(), "{}", text(&out));

    // Every command that was carried out is in the journal, with who gave it.
    let journal = events(&c, 0);
    for want in [
        "n3 drained for 1h: disk swap",
        "drift in app-config acknowledged for 2h",
        "cluster unfrozen",
    ] {
        assert!(
            journal
                .iter()
                .any(|e| e.text.contains(want) && e.text.ends_with("(by node n1)")),
            "{want}: {journal:#?}"
        );
    }
}

#[test]
fn operator_certificates_of_the_cluster_ca_work_and_of_another_ca_are_refused() {
    let c = TestCluster::new(1);
    assert!(wait_until(SETTLE, || c.is_ready(0)));
    let ca = c.ca_dir().join("ca.pem");
    let quic = c.quic_addr(0).to_string();
    issue_operator(c.ca_dir(), "alice");
    let as_operator = |dir: &Path, name: &str, args: &[&str]| {
        Command::new(bin("quorate"))
            .args(args)
            .arg("--connect")
            .arg(&quic)
            .arg("--ca")
            .arg(&ca)
            .arg("--cert")
            .arg(dir.join(format!("{name}.pem")))
            .arg("--key")
            .arg(dir.join(format!("{name}.key")))
            .output()
            .unwrap()
    };
    // The agent answered (its exit status is the verdict: a new one-node cluster may
    // have no primary yet).
    let out = as_operator(c.ca_dir(), "alice", &["status", "--json"]);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["node"], "n1", "{}", text(&out));
    let out = as_operator(c.ca_dir(), "alice", &["drain", "--reason", "maintenance"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(wait_until(SETTLE, || c
        .member(0, "n1")
        .is_some_and(|m| m["drain"]["by"] == "alice")));

    // Another cluster's CA: the same commands are refused in the handshake.
    let other = tempfile::tempdir().unwrap();
    let other_ca = other.path().join("ca");
    ca_init(&other_ca);
    issue_operator(&other_ca, "mallory");
    // (`status` exits 2 on an error: a monitoring check's critical.)
    for (args, code) in [(&["status"][..], 2), (&["undrain"][..], 1)] {
        let out = as_operator(&other_ca, "mallory", args);
        assert_eq!(out.status.code(), Some(code), "{}", text(&out));
        let err = stderr(&out);
        assert!(err.contains(&quic), "the error names the agent: {err}");
    }
    assert!(
        wait_until(Duration::from_secs(5), || c
            .log(0)
            .contains("refused a connection from 127.0.0.1")),
        "the agent logs the refusal"
    );
    // Nothing changed: still drained by alice.
    assert_eq!(c.member(0, "n1").unwrap()["drain"]["by"], "alice");
}

#[test]
fn callers_outside_control_allow_are_dropped_before_tls() {
    // Peers on 127.0.0.1; operators only from 10.255.255.0/24.
    let mut b = TestCluster::builder(3);
    for i in 0..3 {
        b = b.top_level(i, "control_allow = [\"10.255.255.0/24\"]\n");
    }
    let c = b.start();
    one_primary(&c);
    let n1 = tls(c.ca_dir(), "n1", &c.ca_dir().join("ca.pem"));

    // From 127.0.0.2 — neither a peer's address nor allowed: no answer at all, not even
    // a TLS alert (the handshake times out).
    let from = SocketAddr::from((Ipv4Addr::new(127, 0, 0, 2), 0));
    let clock = Stopwatch::start();
    let err = Client::connect(c.quic_addr(0), &n1, Some(from))
        .err()
        .expect("a caller outside control_allow got in");
    let err = err.to_string();
    assert!(err.contains("no handshake"), "{err}");
    assert!(
        clock.elapsed() >= Duration::from_secs(2),
        "{:?}",
        clock.elapsed()
    );
    assert!(
        wait_until(Duration::from_secs(5), || c
            .log(0)
            .contains("dropped a connection attempt from 127.0.0.2")),
        "{}",
        c.log(0)
    );

    // From 127.0.0.1, a peer's address: the handshake is allowed (peers need it), but the
    // operator channel is closed at once, saying why.
    // (`status` cannot ask the agent: critical, 2.)
    let out = c.quorate(0, &["status"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        stderr(&out).contains("127.0.0.1 is not in this agent's control_allow"),
        "{}",
        text(&out)
    );
    assert!(
        c.log(0)
            .contains("closed an operator connection from 127.0.0.1")
    );
    // The peers are untouched.
    assert!(c.wait_converged(SETTLE));
}

#[test]
fn malformed_requests_are_refused_and_change_nothing() {
    let c = TestCluster::new(3);
    let p = one_primary(&c);
    assert!(c.wait_converged(SETTLE));
    let term = c.cluster(0)["term"].clone();
    let client = c.ctl(0);

    let valid = proto::ctl::encode_request(&CtlRequest::Subscribe).unwrap();
    let mut bad_version = valid.clone();
    bad_version[4] = 9;
    let response_as_request = proto::ctl::encode_response(&CtlResponse::EventsEnd).unwrap();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("text", b"hello there, agent".to_vec(), "bytes exceeds the"),
        ("nothing", Vec::new(), "ended before a whole frame"),
        (
            "a cut frame",
            vec![0, 0, 0, 10, 1, 2],
            "ended before a whole frame",
        ),
        ("a zero length", vec![0, 0, 0, 0], "empty message"),
        ("another version", bad_version, "version 9"),
        (
            "postcard garbage",
            vec![0, 0, 0, 3, 1, 0xff, 0xff],
            "malformed",
        ),
        ("an answer as a request", response_as_request, "malformed"),
    ];
    for (what, bytes, want) in cases {
        let answers = client.exchange_raw(&bytes).unwrap();
        match answers.as_slice() {
            [CtlResponse::Refused { reason }] => {
                assert!(reason.starts_with("malformed request"), "{what}: {reason}");
                assert!(reason.contains(want), "{what}: {reason}");
            }
            other => panic!("{what}: {other:?}"),
        }
    }
    // A command whose fields are out of range is refused by the agent's checks.
    let out_of_range = CtlCommand::Drain {
        node: None,
        reason: "y".into(),
        for_secs: Some(0),
    };
    match client.command(out_of_range).unwrap() {
        Outcome::Refused(why) => assert!(why.contains("out of range"), "{why}"),
        other => panic!("{other:?}"),
    }

    // The same connection still works, and the cluster did not notice.
    let snap = client.snapshot().unwrap();
    assert_eq!(snap.status.node, "n1");
    assert_eq!(c.cluster(0)["term"], term);
    assert_eq!(current_primary(&addrs(&c)), Some(p));
    assert!(c.sees_all_alive(0));
    assert!(c.log(0).contains("refused a malformed operator request"));
}
