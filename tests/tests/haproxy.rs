//! Real HAProxy (Debian's package) in front of three real agents (issue 4 acceptance):
//! `option httpchk GET /primary` routes to the primary and follows a failover; the
//! agent-check port weights a round-robin tier by load; `http-check send-state` shows
//! up in `/cluster` as what the balancer last said about each node.
//!
//! The HAProxy harness is `quorate_tests::haproxy`.

// Test code: a failed setup step should stop the test with its error.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::Duration;

use quorate_tests::cluster::free_port;
use quorate_tests::haproxy::Haproxy;
use quorate_tests::primary::current_primary;
use quorate_tests::{Stopwatch, TestCluster, wait_until};

const SETTLE: Duration = Duration::from_secs(20);

#[test]
fn haproxy_routes_to_the_primary_follows_a_failover_and_weights_by_load() {
    let dir = tempfile::tempdir().unwrap();
    let agents: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let mut b = TestCluster::builder(3);
    for (i, port) in agents.iter().enumerate() {
        b = b.extra(
            i,
            &format!("[haproxy_agent]\nlisten = \"127.0.0.1:{port}\"\nramp = \"1s\"\n"),
        );
    }
    let mut c = b.build();
    // Different CPU readings per node, so load-based weights must differ.
    for (i, cpu) in ["0.1", "0.8", "0.1"].iter().enumerate() {
        c.set_env(i, "QUORATE_FAULT_CPU", cpu);
    }
    for i in 0..3 {
        c.start(i);
    }
    let addrs: Vec<SocketAddr> = (0..3).map(|i| c.http_addr(i)).collect();
    let mut p = None;
    assert!(wait_until(SETTLE, || {
        p = current_primary(&addrs);
        p.is_some()
    }));
    let p = p.unwrap();
    let Some(h) = Haproxy::start(dir.path(), &c, &agents) else {
        eprintln!("SKIP: haproxy is not installed (scripts/test.sh installs it as root)");
        return;
    };

    // Routes to the primary, every time.
    assert!(
        wait_until(SETTLE, || h.routed().as_deref() == Some(c.id(p))),
        "haproxy does not route to {}",
        c.id(p)
    );
    for _ in 0..20 {
        assert_eq!(h.routed().as_deref(), Some(c.id(p)));
    }

    // What HAProxy said reaches /cluster.
    assert!(
        wait_until(SETTLE, || c.member(0, c.id(p)).is_some_and(|m| {
            m["balancer"]["state"]
                .as_str()
                .is_some_and(|s| s.starts_with("UP"))
        })),
        "{:#}",
        c.cluster(0)
    );

    // Weights by load: n2 reads 80 % CPU, the others 10 %.
    assert!(
        wait_until(SETTLE, || {
            let t = h.tier();
            let w = |n: &str| {
                t.iter()
                    .find(|(s, _, _)| s == n)
                    .map(|(_, _, w)| *w)
                    .unwrap_or(0)
            };
            t.len() == 3 && w("n2") > 0 && w("n2") < w("n1") && w("n1") == w("n3")
        }),
        "tier weights: {:?}",
        h.tier()
    );
    println!("tier weights by load: {:?}", h.tier());

    // Drain a secondary: the tier drains it, and an undrain gives it back (the agent
    // must clear HAProxy's administrative drain state with `ready`).
    let d = (p + 1) % 3;
    let status_of = |h: &Haproxy, node: &str| {
        h.tier()
            .into_iter()
            .find(|(s, _, _)| s == node)
            .map(|(_, st, _)| st)
            .unwrap_or_default()
    };
    let out = c.quorate(d, &["drain", "--reason", "haproxy test"]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        wait_until(SETTLE, || {
            let st = status_of(&h, c.id(d));
            st.contains("DRAIN") || st.contains("MAINT")
        }),
        "tier: {:?}",
        h.tier()
    );
    let out = c.quorate(d, &["undrain"]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        wait_until(SETTLE, || status_of(&h, c.id(d)) == "UP"),
        "tier after undrain: {:?}",
        h.tier()
    );

    // Failover: kill the primary; HAProxy follows to the new one.
    let clock = Stopwatch::start();
    c.kill(p);
    let mut failed = 0;
    let mut new = None;
    assert!(
        wait_until(Duration::from_secs(10), || {
            match h.routed() {
                Some(n) if n != c.id(p) => {
                    new = Some(n);
                    true
                }
                _ => {
                    failed += 1;
                    false
                }
            }
        }),
        "haproxy did not follow the failover"
    );
    println!(
        "haproxy routes to {} {:?} after the primary was killed ({failed} polls failed or went to the dead node)",
        new.as_deref().unwrap_or("?"),
        clock.elapsed()
    );
    let new = new.unwrap();
    let survivors: Vec<SocketAddr> = (0..3).filter(|i| *i != p).map(|i| c.http_addr(i)).collect();
    let q = current_primary(&survivors).map(|k| if k >= p { k + 1 } else { k });
    assert_eq!(q.map(|k| c.id(k).to_owned()), Some(new.clone()));
    for _ in 0..20 {
        assert_eq!(h.routed().as_deref(), Some(new.as_str()));
    }
    // The tier marks the dead node down.
    assert!(wait_until(SETTLE, || h
        .tier()
        .iter()
        .any(|(s, st, _)| s == c.id(p) && st.starts_with("DOWN"))));
}
