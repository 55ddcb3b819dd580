//! Revoking certificates with real agents, real QUIC and real mutual TLS (issue 13):
//! `quorate ca revoke` writes `crl.pem`; agents given it (`[tls] crl`, then SIGHUP)
//! refuse a revoked operator at the handshake and close the operator connection it
//! already had, while another operator carries on; a revoked node's links are refused
//! by its peers, in both directions, each side saying why in its log.
//!
//! Bounds are generous (a noisy 2-core CI box).

// Test code: a failed setup step should stop the test with its error.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use quorate_agent::config::TlsPaths;
use quorate_agent::ctl::client::Update;
use quorate_agent::ctl::client::blocking::Client;
use quorate_tests::primary::wait_one_primary;
use quorate_tests::{Stopwatch, TestCluster, bin, run_ok, wait_until};

const SETTLE: Duration = Duration::from_secs(30);

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `quorate ca ARGS --dir DIR`, which must succeed; its stdout.
fn ca(dir: &Path, args: &[&str]) -> String {
    let out = run_ok(
        Command::new(bin("quorate"))
            .arg("ca")
            .arg(args[0])
            .arg("--dir")
            .arg(dir)
            .args(&args[1..]),
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `quorate ARGS` against node `i` as operator `name` (its certificate in the CA dir).
fn as_operator(c: &TestCluster, i: usize, name: &str, args: &[&str]) -> Output {
    let dir = c.ca_dir();
    Command::new(bin("quorate"))
        .args(args)
        .arg("--connect")
        .arg(c.quic_addr(i).to_string())
        .arg("--ca")
        .arg(dir.join("ca.pem"))
        .arg("--cert")
        .arg(dir.join(format!("{name}.pem")))
        .arg("--key")
        .arg(dir.join(format!("{name}.key")))
        .output()
        .unwrap()
}

/// Gives node `i` the revocation list `crl` (`[tls] crl`) and reloads it (SIGHUP).
fn reload_with_crl(c: &TestCluster, i: usize, crl: &Path) {
    let cfg = c.config(i);
    let key = format!("key = \"{}\"\n", cfg.key.display());
    let text = cfg.render();
    assert!(text.contains(&key), "{text}");
    let text = text.replace(&key, &format!("{key}crl = \"{}\"\n", crl.display()));
    fs::write(c.config_path(i), text).unwrap();
    c.signal(i, libc::SIGHUP);
}

/// Waits until node `i`'s log has `needle`; its log on failure.
fn wait_log(c: &TestCluster, i: usize, needle: &str) {
    assert!(
        wait_until(SETTLE, || c.log(i).contains(needle)),
        "{} never logged {needle:?}; its log:\n{}",
        c.id(i),
        c.log(i)
    );
}

/// The revocation list, copied as an operator would to where the nodes read it.
fn install_crl(c: &TestCluster) -> PathBuf {
    let path = c.dir().join("crl.pem");
    fs::copy(c.ca_dir().join("crl.pem"), &path).unwrap();
    path
}

#[test]
fn a_revoked_operator_is_refused_and_its_open_connection_closed() {
    let c = TestCluster::new(1);
    assert!(wait_until(SETTLE, || c.is_ready(0)));
    ca(c.ca_dir(), &["issue", "--operator", "alice"]);
    ca(c.ca_dir(), &["issue", "--operator", "bob"]);
    // (`status` exits 0 once the new cluster has its primary: its verdict.)
    assert!(wait_until(SETTLE, || as_operator(
        &c,
        0,
        "alice",
        &["status"]
    )
    .status
    .success()));

    // Alice keeps a connection open: a live subscription.
    let dir = c.ca_dir();
    let alice = Client::connect(
        c.quic_addr(0),
        &TlsPaths {
            ca: dir.join("ca.pem"),
            cert: dir.join("alice.pem"),
            key: dir.join("alice.key"),
        },
        None,
    )
    .unwrap();
    let mut sub = alice.subscribe().unwrap();
    assert!(matches!(
        sub.next(SETTLE).unwrap(),
        Some(Update::Snapshot(_))
    ));

    let said = ca(c.ca_dir(), &["revoke", "--operator", "alice"]);
    assert!(
        said.contains("revoked operator alice's certificate, serial "),
        "{said}"
    );
    assert!(said.contains("crl.pem (CRL number 1"), "{said}");
    assert!(said.contains("systemctl reload quorate"), "{said}");
    reload_with_crl(&c, 0, &install_crl(&c));
    wait_log(&c, 0, "; crl revokes 1)");

    // The open connection is closed, saying why (snapshots keep coming until then).
    let clock = Stopwatch::start();
    let closed = loop {
        match sub.next(SETTLE) {
            Ok(Some(_)) if clock.elapsed() < SETTLE => continue,
            Ok(Some(_)) => break format!("still open after {SETTLE:?}"),
            Ok(None) => break "ended without a reason".to_owned(),
            Err(e) => break e.to_string(),
        }
    };
    assert!(closed.contains("certificate revoked"), "{closed}");
    wait_log(&c, 0, "closed the connection of operator alice at ");

    // A new connection is refused in the handshake, with words an operator understands.
    // (`status` that cannot ask the agent is critical: 2.)
    let out = as_operator(&c, 0, "alice", &["status"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&c.quic_addr(0).to_string()), "{err}");
    assert!(err.contains("invalid peer certificate: Revoked"), "{err}");
    wait_log(&c, 0, "Revoked");

    // Bob is untouched, and nothing else changed.
    let out = as_operator(&c, 0, "bob", &["status"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(c.is_ready(0));
}

#[test]
fn a_revoked_node_is_refused_by_its_peers() {
    let c = TestCluster::new(3);
    assert!(c.wait_converged(SETTLE), "the cluster did not converge");
    let said = ca(c.ca_dir(), &["revoke", "n3"]);
    assert!(
        said.contains("revoked node n3's certificate, serial "),
        "{said}"
    );
    let crl = install_crl(&c);

    // n3 itself refuses a list that revokes it (a clear config error, nothing started).
    let mut n3 = c.config(2).clone();
    n3.state_dir = c.dir().join("n3-check");
    let check = c.dir().join("n3-check.toml");
    let key = format!("key = \"{}\"\n", n3.key.display());
    fs::write(
        &check,
        n3.render()
            .replace(&key, &format!("{key}crl = \"{}\"\n", crl.display())),
    )
    .unwrap();
    let out = Command::new(bin("quorate-agent"))
        .arg("--check-config")
        .arg("--config")
        .arg(&check)
        .output()
        .unwrap();
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("revokes this node's own certificate"),
        "{}",
        text(&out)
    );

    for i in 0..2 {
        reload_with_crl(&c, i, &crl);
        wait_log(&c, i, "; crl revokes 1)");
    }
    // The reload itself closes the links already up with n3…
    for i in 0..2 {
        wait_log(&c, i, "closed the link to n3: its certificate (serial");
    }
    // …and n3, still running without the list, dials n1 and n2 again: its certificate
    // is refused there…
    for i in 0..2 {
        wait_log(&c, i, "invalid peer certificate: Revoked");
    }
    // …and n1 and n2, dialing n3, refuse the certificate it serves.
    wait_log(&c, 0, "cannot reach peer (attempt 1)");
    assert!(
        wait_until(SETTLE, || c.log(0).lines().any(|l| l
            .contains(&c.quic_addr(2).to_string())
            && l.contains("Revoked"))),
        "{}",
        c.log(0)
    );
    // n1 and n2 see n3 gone and keep a primary between them; n3 reaches nobody.
    for i in 0..2 {
        assert!(
            wait_until(SETTLE, || c.state_of(i, "n3").as_deref() != Some("alive")),
            "{} still sees n3 alive: {:?}",
            c.id(i),
            c.member(i, "n3")
        );
    }
    let addrs = [c.http_addr(0), c.http_addr(1)];
    assert!(
        wait_one_primary(&addrs, SETTLE).is_some(),
        "n1 and n2 lost their primary"
    );
    // n3 hears from nobody once its links are closed; the detector takes a moment.
    for peer in ["n1", "n2"] {
        assert!(
            wait_until(SETTLE, || c.state_of(2, peer).as_deref() != Some("alive")),
            "n3 still sees {peer} alive: {:?}",
            c.member(2, peer)
        );
    }
}
