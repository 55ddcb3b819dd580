//! The terminal UI end to end (issue 5 acceptance): the real `quorate` binary in a real
//! terminal (tmux) attached to three real agents over the operator channel. The test
//! reads the screen as an operator would and types keys.

// Test code: a failed setup step should stop the test with its error.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::Duration;

use quorate_tests::primary::current_primary;
use quorate_tests::tmux::Tmux;
use quorate_tests::{TestCluster, bin, wait_until};

const SETTLE: Duration = Duration::from_secs(20);

fn addrs(c: &TestCluster) -> Vec<SocketAddr> {
    (0..c.members()).map(|i| c.http_addr(i)).collect()
}

fn wait_primary(c: &TestCluster, among: &[usize]) -> Option<usize> {
    let all = addrs(c);
    let addrs: Vec<SocketAddr> = among.iter().map(|&i| all[i]).collect();
    let mut p = None;
    wait_until(SETTLE, || {
        p = current_primary(&addrs).map(|k| among[k]);
        p.is_some()
    });
    p
}

/// The header names the primary as `primary nX`.
fn shows_primary(screen: &str, node: &str) -> bool {
    screen
        .lines()
        .take(3)
        .any(|l| l.contains(&format!("primary {node} ")))
}

/// The STATE column of `node`'s row in the node table.
fn row_state<'s>(screen: &'s str, node: &str) -> Option<&'s str> {
    screen.lines().find_map(|l| {
        // `│` in the Unicode variant, `|` in the ASCII one.
        let row = l
            .strip_prefix('│')
            .or_else(|| l.strip_prefix('|'))?
            .trim_start_matches('>');
        let mut cols = row.split_whitespace();
        let name = cols.next()?.trim_end_matches('*');
        (name == node).then(|| cols.next()).flatten()
    })
}

#[test]
fn the_tui_follows_a_failover_reconnects_drains_and_quits_cleanly() {
    if !Tmux::available() {
        eprintln!("SKIP: tmux is not installed (scripts/test.sh installs it)");
        return;
    }
    let mut c = TestCluster::builder(3).start();
    let p = wait_primary(&c, &[0, 1, 2]).expect("a primary");
    // Attach to a secondary, so that killing the primary leaves the TUI attached.
    let a = (p + 1) % 3;
    let b = (p + 2) % 3;
    let dir = tempfile::tempdir().unwrap();
    let quorate = bin("quorate");
    let config = c.config_path(a).to_owned();
    let t = Tmux::start(
        dir.path(),
        120,
        40,
        &[("NO_COLOR", "1"), ("LC_ALL", "C.UTF-8")],
        &[
            quorate.to_str().unwrap(),
            "--config",
            config.to_str().unwrap(),
        ],
    );

    // The screen shows n1–n3 and the primary.
    let (ok, screen) = t.wait_for(SETTLE, |s| {
        ["n1", "n2", "n3"].iter().all(|n| s.contains(n)) && shows_primary(s, c.id(p))
    });
    assert!(ok, "first screen:\n{screen}");

    // Kill the primary: the failover shows within 2 s of the new primary (generous: the
    // election itself takes about half a second).
    c.kill(p);
    let q = wait_primary(&c, &[a, b]).expect("a new primary");
    let (ok, screen) = t.wait_for(Duration::from_secs(2), |s| shows_primary(s, c.id(q)));
    assert!(ok, "after the failover to {}:\n{screen}", c.id(q));

    // Kill the agent the TUI is attached to: it reconnects to another and keeps going.
    c.start(p);
    assert!(c.wait_converged(SETTLE));
    c.kill(a);
    let (ok, screen) = t.wait_for(SETTLE, |s| {
        s.lines()
            .take(3)
            .any(|l| l.contains("attached") && !l.contains(&format!("attached {} ", c.id(a))))
            && !s.contains("RECONNECTING")
    });
    assert!(ok, "after losing {}:\n{screen}", c.id(a));
    // …and keeps updating: the restarted node shows up alive again.
    c.start(a);
    assert!(c.wait_converged(SETTLE));
    let (ok, screen) = t.wait_for(SETTLE, |s| {
        ["n1", "n2", "n3"]
            .iter()
            .all(|n| row_state(s, n) == Some("alive"))
            && !s.contains("STALE")
    });
    assert!(ok, "after {} came back:\n{screen}", c.id(a));

    // Drain a secondary from the TUI: select its row, `d`, confirm.
    let primary = wait_primary(&c, &[0, 1, 2]).expect("a primary");
    let d = (primary + 1) % 3;
    for _ in 0..d {
        t.send_keys(&["j"]);
    }
    t.send_keys(&["d"]);
    let (ok, screen) = t.wait_for(Duration::from_secs(5), |s| {
        s.contains(&format!("Drain {}", c.id(d))) || s.contains(&format!("drain {}", c.id(d)))
    });
    assert!(ok, "no confirmation for draining {}:\n{screen}", c.id(d));
    t.send_keys(&["y"]);
    assert!(
        wait_until(Duration::from_secs(10), || c.http_get(d, "/health").status
            == 404),
        "{} not drained:\n{}",
        c.id(d),
        t.screen()
    );

    // `q` exits 0 and leaves the alternate screen.
    t.send_keys(&["q"]);
    assert!(
        wait_until(Duration::from_secs(5), || t.exit_status() == Some(0)),
        "exit: {:?}\n{}\n{}",
        t.exit_status(),
        t.describe_pane(),
        t.screen()
    );
    let screen = t.screen();
    assert!(
        !screen.contains("quorum"),
        "the TUI is still on screen:\n{screen}"
    );
}

#[test]
fn the_demo_opens_the_tui_and_q_stops_every_agent() {
    if !Tmux::available() {
        eprintln!("SKIP: tmux is not installed (scripts/test.sh installs it)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let quorate = bin("quorate");
    let t = Tmux::start(
        dir.path(),
        100,
        30,
        // The ASCII variant, as over an SSH session with LANG=C.
        &[("NO_COLOR", "1"), ("LC_ALL", "C")],
        &[quorate.to_str().unwrap(), "demo"],
    );
    // It says how to kill a node first…
    let (ok, screen) = t.wait_for(SETTLE, |s| s.contains("kill a node:  kill -9"));
    assert!(ok, "no instructions:\n{screen}");
    let pids: Vec<u32> = screen
        .lines()
        .filter_map(|l| {
            l.split(" pid ")
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .collect();
    assert_eq!(pids.len(), 3, "{screen}");
    // …then opens the live view with a primary.
    let (ok, screen) = t.wait_for(SETTLE, |s| {
        ["n1", "n2", "n3"]
            .iter()
            .all(|n| row_state(s, n) == Some("alive"))
            && s.lines().take(3).any(|l| l.contains("primary n"))
    });
    assert!(ok, "no live view:\n{screen}");
    assert!(screen.is_ascii(), "LC_ALL=C but not ASCII:\n{screen}");
    t.send_keys(&["q"]);
    assert!(
        wait_until(SETTLE, || t.exit_status() == Some(0)),
        "{}\n{}",
        t.describe_pane(),
        t.screen()
    );
    // Every agent was stopped.
    for pid in pids {
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "agent {pid} still runs"
        );
    }
}
