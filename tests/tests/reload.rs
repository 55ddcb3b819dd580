//! `systemctl reload` / SIGHUP with real agent processes: live keys apply at once, with
//! the same process (an app check, http.allow, control_allow, priority, roles);
//! restart-only keys stay as they run and show as pending; an invalid file changes
//! nothing; a renewed certificate is served without a restart; a hung probe never delays
//! a reload; a primary stays primary (same term) through all of it.
//!
//! Bounds are generous (a noisy 2-core CI box).

// Test code: a failed setup step should stop the test with its error.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::time::Duration;

use quorate_tests::cluster::{NodeConfig, free_port};
use quorate_tests::fuse::StallableMount;
use quorate_tests::primary::wait_one_primary;
use quorate_tests::quic;
use quorate_tests::{Stopwatch, TestCluster, wait_until};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject as _;
use serde_json::Value;

const SETTLE: Duration = Duration::from_secs(20);

/// Writes node `i`'s config file as `edit` changes it, and sends SIGHUP.
fn reload_with(c: &TestCluster, i: usize, edit: impl FnOnce(&mut NodeConfig)) -> String {
    let mut cfg = c.config(i).clone();
    edit(&mut cfg);
    let text = cfg.render();
    fs::write(c.config_path(i), &text).unwrap();
    c.signal(i, libc::SIGHUP);
    text
}

/// Waits until node `i`'s log has `needle`; the log on failure.
fn wait_log(c: &TestCluster, i: usize, needle: &str) {
    assert!(
        wait_until(SETTLE, || c.log(i).contains(needle)),
        "{} never logged {needle:?}; its log:\n{}",
        c.id(i),
        c.log(i)
    );
}

fn app_check(c: &TestCluster, i: usize) -> Option<String> {
    c.member(i, c.id(i))
        .and_then(|m| m["checks"]["app"].as_str().map(str::to_owned))
}

fn pending(c: &TestCluster, i: usize) -> Vec<String> {
    c.cluster(i)["pending_restart"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

fn term(c: &TestCluster, i: usize) -> u64 {
    c.cluster(i)["term"].as_u64().unwrap()
}

#[test]
fn reload_applies_live_keys_keeps_restart_only_ones_and_survives_an_invalid_file() {
    let mut c = TestCluster::builder(1).start();
    assert!(wait_until(SETTLE, || c
        .http(0, "GET", "/health")
        .is_ok_and(|r| r.status == 200)));
    let pid = c.pid(0);

    // An app check appears: a tcp check of a port nobody listens on fails.
    let app = format!(
        "[app]\ncheck = \"tcp://127.0.0.1:{}\"\ninterval = \"200ms\"\ntimeout = \"500ms\"\nrise = 1\nfall = 1\n",
        free_port()
    );
    reload_with(&c, 0, |cfg| cfg.extra = app.clone());
    wait_log(&c, 0, "reload: applied app");
    assert!(
        wait_until(SETTLE, || app_check(&c, 0).as_deref() == Some("fail")),
        "app check: {:?}",
        app_check(&c, 0)
    );
    let health = c.http_get(0, "/health");
    assert_eq!(health.status, 503, "{}", health.body);
    assert!(
        health.json()["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r == "app"),
        "{}",
        health.body
    );
    assert_eq!(c.pid(0), pid);

    // An invalid file: one error line with file:line, nothing changes, it keeps running.
    let bad = reload_with(&c, 0, |cfg| {
        cfg.extra = format!("{app}\n[timing]\nlease = \"fast\"\n");
    });
    let line = bad.lines().position(|l| l.contains("\"fast\"")).unwrap() + 1;
    let at = format!("reload: {}:{line}: ", c.config_path(0).display());
    wait_log(&c, 0, &at);
    assert!(
        c.log(0)
            .lines()
            .any(|l| l.contains(&at) && l.contains("ERROR") && l.contains("nothing changed")),
        "{}",
        c.log(0)
    );
    assert!(c.is_running(0));
    assert_eq!(c.pid(0), pid);
    assert_eq!(
        app_check(&c, 0).as_deref(),
        Some("fail"),
        "the old check stays"
    );
    assert!(pending(&c, 0).is_empty());

    // A duration that would overflow the clock: refused by name, and it keeps running.
    let bad = reload_with(&c, 0, |cfg| {
        cfg.extra = format!("{app}\n[timing]\nelection_timeout = \"1000years\"\n");
    });
    let line = bad.lines().position(|l| l.contains("1000years")).unwrap() + 1;
    wait_log(
        &c,
        0,
        &format!(
            "reload: {}:{line}: timing.election_timeout: duration \"1000years\" is too long",
            c.config_path(0).display()
        ),
    );
    assert!(c.is_running(0));
    assert_eq!(c.pid(0), pid);
    assert!(pending(&c, 0).is_empty());

    // A restart-only key: kept as it runs, one warning naming it, shown as pending.
    reload_with(&c, 0, |cfg| {
        cfg.extra = format!("{app}\n[timing]\nlease = \"200ms\"\n");
    });
    wait_log(
        &c,
        0,
        "reload: timing.lease changed (300ms → 200ms): needs a restart (systemctl restart quorate); still using 300ms",
    );
    assert!(wait_until(SETTLE, || pending(&c, 0) == ["timing.lease"]));
    assert_eq!(app_check(&c, 0).as_deref(), Some("fail"), "unchanged, kept");

    // The file agrees with the running agent again: nothing pending, the check is gone.
    reload_with(&c, 0, |cfg| cfg.extra = String::new());
    assert!(wait_until(SETTLE, || pending(&c, 0).is_empty()
        && app_check(&c, 0).as_deref() == Some("off")));
    assert!(wait_until(SETTLE, || c.http_get(0, "/health").status == 200));

    // http.allow, live: loopback may read /cluster, then not, then again.
    assert_eq!(c.http_get(0, "/cluster").status, 200);
    reload_with(&c, 0, |cfg| {
        cfg.extra = "allow = [\"10.0.0.0/8\"]\n".into();
    });
    assert!(wait_until(SETTLE, || c.http_get(0, "/cluster").status == 403));
    assert_eq!(c.http_get(0, "/health").status, 200, "health is for anyone");
    reload_with(&c, 0, |cfg| cfg.extra = String::new());
    assert!(wait_until(SETTLE, || c.http_get(0, "/cluster").status == 200));

    // control_allow, live: the operator channel from loopback closes, then opens again.
    // `status` succeeds once there is a primary: the lone node was unfit (the app check)
    // a moment ago, so its election may still be a timeout away.
    assert!(
        wait_until(SETTLE, || c.quorate(0, &["status"]).status.success()),
        "{:?}",
        c.quorate(0, &["status"])
    );
    reload_with(&c, 0, |cfg| {
        cfg.top_level = "control_allow = [\"10.0.0.0/8\"]\n".into();
    });
    wait_log(&c, 0, "reload: applied control_allow");
    let refused = c.quorate(0, &["status"]);
    assert!(
        !refused.status.success()
            && String::from_utf8_lossy(&refused.stderr).contains("control_allow"),
        "{refused:?}"
    );
    reload_with(&c, 0, |cfg| cfg.top_level = String::new());
    assert!(wait_until(SETTLE, || c
        .quorate(0, &["status"])
        .status
        .success()));

    // Never an exit (the term is the other test's: here the failing app check moves it).
    assert_eq!(c.pid(0), pid);
    assert!(wait_until(SETTLE, || c.http_get(0, "/primary").status == 200));
    assert!(c.term(0).success());
}

fn pem_der(path: &std::path::Path) -> Vec<u8> {
    CertificateDer::from_pem_file(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .as_ref()
        .to_vec()
}

#[test]
fn a_primary_stays_primary_across_reloads_and_serves_a_renewed_certificate() {
    let c = TestCluster::new(3);
    assert!(c.wait_converged(SETTLE), "the cluster did not converge");
    let addrs: Vec<_> = (0..3).map(|i| c.http_addr(i)).collect();
    let p = wait_one_primary(&addrs, SETTLE).expect("no single primary");
    let other = (p + 1) % 3;
    let me = c.id(p).to_owned();
    let pid = c.pid(p);
    let term_before = term(&c, p);

    // Priority and roles, live: the peers see them, the primary stays.
    reload_with(&c, p, |cfg| {
        cfg.priority = 200;
        cfg.top_level = "roles = [\"web\"]\n".into();
    });
    wait_log(&c, p, "reload: applied priority, roles");
    let seen = |i: usize| -> bool {
        c.member(i, &me).is_some_and(|m: Value| {
            m["priority"] == 200 && m["roles"].as_array().is_some_and(|r| r == &["web"])
        })
    };
    assert!(
        wait_until(SETTLE, || seen(other)),
        "{:?}",
        c.member(other, &me)
    );

    // A renewed certificate: served to new connections after the reload, while the
    // peer links already up stay up.
    let client = quic::Client::new(
        &c.ca_dir().join("ca.pem"),
        &c.ca_dir().join(format!("{}.pem", c.id(other))),
        &c.ca_dir().join(format!("{}.key", c.id(other))),
    );
    let old = pem_der(&c.ca_dir().join(format!("{me}.pem")));
    assert_eq!(client.server_cert(c.quic_addr(p)).unwrap(), old);
    let out = std::process::Command::new(quorate_tests::bin("quorate"))
        .args(["ca", "renew", "--dir"])
        .arg(c.ca_dir())
        .arg(&me)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let new = pem_der(&c.ca_dir().join(format!("{me}.pem")));
    assert_ne!(new, old);
    c.signal(p, libc::SIGHUP);
    wait_log(&c, p, "reload: applied tls (certificate expires ");
    assert!(
        wait_until(SETTLE, || client.server_cert(c.quic_addr(p)).ok().as_ref()
            == Some(&new)),
        "the new certificate is not served"
    );
    // An operator connection with the node's own (kept) key and new certificate.
    let _ctl = c.ctl(p);
    assert!((0..3).all(|i| c.sees_all_alive(i)));

    // Same process, same primary, same term, no handover.
    assert_eq!(c.pid(p), pid);
    assert_eq!(wait_one_primary(&addrs, SETTLE), Some(p));
    assert_eq!(term(&c, p), term_before);
    assert!(!c.log(p).contains("stepped down"), "{}", c.log(p));
    assert!(!c.log(p).contains("handing over"), "{}", c.log(p));
}

#[test]
fn a_reload_never_waits_for_a_hung_probe() {
    // A FUSE mount whose daemon is stopped blocks every access, as a hung NFS server does.
    let Some(fuse) = StallableMount::temporary() else {
        eprintln!("SKIP: needs root, /dev/fuse and bindfs (scripts/test.sh installs it)");
        return;
    };
    let mnt = fuse.path().to_owned();
    let mount = format!(
        "[[mount]]\npath = \"{}\"\nexpect_mount = true\nwritable = true\ninterval = \"200ms\"\ntimeout = \"300ms\"\n",
        mnt.display()
    );
    let c = TestCluster::builder(1).extra(0, &mount).start();
    assert!(wait_until(SETTLE, || c
        .http(0, "GET", "/health")
        .is_ok_and(|r| r.status == 200)));
    let pid = c.pid(0);
    fuse.stall();
    assert!(wait_until(SETTLE, || c
        .member(0, "n1")
        .is_some_and(|m| m["checks"]["mounts"] == "hung")));

    // The mount goes from the file: applied at once, the stuck probe left behind.
    let clock = Stopwatch::start();
    reload_with(&c, 0, |cfg| cfg.extra = String::new());
    wait_log(&c, 0, "reload: applied mount");
    let took = clock.elapsed();
    println!("reload with a hung mount probe applied in {took:?}");
    assert!(took < Duration::from_secs(2), "{took:?}");
    assert!(wait_until(SETTLE, || c.http_get(0, "/health").status == 200));
    assert_eq!(
        c.member(0, "n1").unwrap()["checks"]["mounts"],
        "off",
        "{:#}",
        c.cluster(0)
    );
    assert_eq!(c.pid(0), pid);
    fuse.resume();
}
