//! Node checks with real agent processes on loopback (issue 4 acceptance): config drift
//! through real files and inotify, an app check that fails, a required path that
//! vanishes, singleton tasks, roles, a hung check, shared-storage proofs in real mount
//! namespaces, the clock-offset fault, draining, the upgrade gate, and log volume.
//!
//! Bounds are generous (a noisy 2-core CI box); each test prints what it measured.

// Test code: a failed setup step should stop the test with its error.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::Path;
use std::time::Duration;

use quorate_tests::cluster::nodes;
use quorate_tests::fuse::StallableMount;
use quorate_tests::mountns::{bind_wrapper, can_unshare};
use quorate_tests::primary::current_primary;
use quorate_tests::{Stopwatch, TestCluster, wait_until};
use serde_json::Value;

const SETTLE: Duration = Duration::from_secs(20);

fn addrs(c: &TestCluster) -> Vec<std::net::SocketAddr> {
    (0..c.members()).map(|i| c.http_addr(i)).collect()
}

fn one_primary(c: &TestCluster) -> usize {
    quorate_tests::primary::wait_one_primary(&addrs(c), SETTLE).expect("no single primary")
}

fn all_healthy(c: &TestCluster) -> bool {
    (0..c.members()).all(|i| c.http(i, "GET", "/health").is_ok_and(|r| r.status == 200))
}

fn check_of(c: &TestCluster, i: usize, about: &str, check: &str) -> Option<String> {
    c.member(i, about)
        .and_then(|m| m["checks"][check].as_str().map(str::to_owned))
}

/// Writes the same app config on every node's directory, with a per-node line.
fn write_app_config(dir: &Path, node: &str, setting: &str) {
    fs::create_dir_all(dir).unwrap();
    fs::write(
        dir.join("app.xml"),
        format!("<site url=\"https://{node}.example\"/>\n<setting>{setting}</setting>\n"),
    )
    .unwrap();
}

#[test]
fn config_drift_ignores_per_node_lines_and_shows_a_real_edit_everywhere() {
    if !can_unshare() {
        eprintln!("SKIP: needs root for mount namespaces (CI runs as root)");
        return;
    }
    // Every node sees its own directory at the same path, as on separate machines.
    let root = tempfile::tempdir().unwrap();
    let etc = root.path().join("etc");
    fs::create_dir_all(&etc).unwrap();
    let set = format!(
        "[[config]]\nname = \"app\"\npaths = [\"{}/*.xml\"]\nignore = ['site url=']\n",
        etc.display()
    );
    let mut c = TestCluster::builder(3).extra_all(&set).build();
    for i in 0..3 {
        let dir = root.path().join(format!("n{}", i + 1));
        write_app_config(&dir, &format!("n{}", i + 1), "a");
        let wrap = bind_wrapper(&dir, &etc);
        c.set_wrapper(i, &wrap.iter().map(String::as_str).collect::<Vec<_>>());
        c.start(i);
    }
    // The per-node line is ignored: every node agrees with every other.
    assert!(
        wait_until(SETTLE, || (0..3).all(|i| (1..=3).all(|k| {
            check_of(&c, i, &format!("n{k}"), "config").as_deref() == Some("ok")
        }) && c
            .member(i, "n1")
            .is_some_and(|m| m["config"][0]["agrees_with"]
                .as_array()
                .is_some_and(|a| a.len() == 2)))),
        "config not ok everywhere: {:#}",
        c.cluster(0)
    );

    // A real edit on n3.
    let clock = Stopwatch::start();
    write_app_config(&root.path().join("n3"), "n3", "b");
    let shows_drift = |i: usize| {
        c.member(i, &format!("n{}", i + 1)).is_some_and(|m| {
            let set = &m["config"][0];
            let differs: Vec<&str> = set["differs_from"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            if i == 2 {
                differs == ["n1", "n2"]
            } else {
                differs == ["n3"]
            }
        })
    };
    assert!(
        quorate_tests::wait_until_every(Duration::from_secs(5), Duration::from_millis(20), || {
            (0..3).all(shows_drift)
        }),
        "drift not shown everywhere: {:#}",
        c.cluster(0)
    );
    println!(
        "edit on n3 → drift shown on all 3 nodes in {:?}",
        clock.elapsed()
    );
    // The file is named, and the node's check says drift.
    let m = c.member(0, "n1").unwrap();
    assert!(
        m["config"][0]["differing_files"][0]["path"]
            .as_str()
            .is_some_and(|p| p.ends_with("app.xml"))
    );
    assert_eq!(check_of(&c, 0, "n3", "config").as_deref(), Some("drift"));
    // Drift is a warning, not unfitness.
    assert!(all_healthy(&c));
}

#[test]
fn a_failing_app_check_on_the_primary_moves_the_primary() {
    let flags = tempfile::tempdir().unwrap();
    let check = format!(
        "[app]\ncheck = \"exec:test ! -e {}/$(hostname)-never\"\ninterval = \"200ms\"\ntimeout = \"1s\"\nrise = 2\nfall = 2\n",
        flags.path().display()
    );
    let mut b = TestCluster::builder(3);
    for i in 0..3 {
        // Each node's check fails while its flag file exists.
        b = b.extra(
            i,
            &check.replace("$(hostname)-never", &format!("n{}.fail", i + 1)),
        );
    }
    let c = b.start();
    let p = one_primary(&c);
    assert!(wait_until(SETTLE, || all_healthy(&c)));

    let clock = Stopwatch::start();
    fs::write(flags.path().join(format!("n{}.fail", p + 1)), "").unwrap();
    let addrs = addrs(&c);
    let mut moved = None;
    assert!(
        quorate_tests::wait_until_every(Duration::from_secs(10), Duration::from_millis(10), || {
            moved = current_primary(&addrs).filter(|q| *q != p);
            moved.is_some()
        }),
        "the primary stayed on {} with a failing app",
        c.id(p)
    );
    println!(
        "app check failing on the primary → another primary in {:?} (fall × interval = 400 ms)",
        clock.elapsed()
    );
    let h = c.http_get(p, "/health");
    assert_eq!(h.status, 503, "{}", h.body);
    assert!(
        h.json()["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r == "app")
    );
    let moved = moved.unwrap();
    assert!(wait_until(Duration::from_secs(5), || check_of(
        &c,
        moved,
        c.id(p),
        "app"
    )
    .as_deref()
        == Some("fail")));

    // The log says it once, not once per probe.
    std::thread::sleep(Duration::from_secs(3));
    let log = c.log(p);
    let lines = log.lines().filter(|l| l.contains("app check")).count();
    assert!(
        (1..=3).contains(&lines),
        "{lines} app-check lines in 3 s of 200 ms probes:\n{log}"
    );
}

#[test]
fn a_vanished_required_path_fails_health_with_reason_mount() {
    let root = tempfile::tempdir().unwrap();
    let mut b = TestCluster::builder(3);
    for i in 0..3 {
        let dir = root.path().join(format!("repo{}", i + 1));
        fs::create_dir_all(&dir).unwrap();
        b = b.extra(
            i,
            &format!(
                "[[mount]]\npath = \"{}\"\nwritable = true\ninterval = \"200ms\"\n",
                dir.display()
            ),
        );
    }
    let c = b.start();
    assert!(wait_until(SETTLE, || all_healthy(&c)));
    fs::remove_dir_all(root.path().join("repo2")).unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || {
            let r = c.http_get(1, "/health");
            r.status == 503
                && r.json()["reasons"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|x| x == "mount"))
        }),
        "{}",
        c.http_get(1, "/health").body
    );
    let verbose = c.http_get(1, "/health?verbose");
    assert!(verbose.body.contains("[-]mounts"), "{}", verbose.body);
    // The others stay fit and see n2's mount fail.
    assert!(wait_until(Duration::from_secs(5), || {
        check_of(&c, 0, "n2", "mounts").as_deref() == Some("fail")
    }));
    assert_eq!(c.http_get(0, "/health").status, 200);
}

#[test]
fn tasks_run_on_exactly_one_node_per_rule_and_move_when_it_fails() {
    let tasks = "[[task]]\nname = \"on-primary\"\nrun_on = \"primary\"\n\n\
                 [[task]]\nname = \"pinned\"\nrun_on = \"node:n2\"\n\n\
                 [[task]]\nname = \"preferred\"\nrun_on = \"prefer:n3,n1\"\n\n\
                 [[task]]\nname = \"spread-a\"\nrun_on = \"spread\"\n\n\
                 [[task]]\nname = \"spread-b\"\nrun_on = \"spread\"\n";
    let mut c = TestCluster::builder(3)
        .top_level(0, "roles = [\"web\"]\n")
        .top_level(1, "roles = [\"web\", \"import\"]\n")
        .top_level(2, "roles = [\"import\"]\n")
        .extra_all(tasks)
        .start();
    let p = one_primary(&c);
    assert!(wait_until(SETTLE, || all_healthy(&c)));

    let holders = |c: &TestCluster, task: &str, alive: &[usize]| -> Vec<usize> {
        alive
            .iter()
            .copied()
            .filter(|&i| {
                c.http(i, "GET", &format!("/task/{task}"))
                    .is_ok_and(|r| r.status == 200)
            })
            .collect()
    };
    let exactly_one = |c: &TestCluster, task: &str, alive: &[usize]| -> Option<usize> {
        let mut one = None;
        wait_until(SETTLE, || {
            let h = holders(c, task, alive);
            one = (h.len() == 1).then(|| h[0]);
            one.is_some()
        });
        one
    };
    let all = [0, 1, 2];
    assert_eq!(exactly_one(&c, "on-primary", &all), Some(p));
    assert_eq!(exactly_one(&c, "pinned", &all), Some(1));
    assert_eq!(exactly_one(&c, "preferred", &all), Some(2));
    let spread_a = exactly_one(&c, "spread-a", &all).expect("spread-a placed");
    exactly_one(&c, "spread-b", &all).expect("spread-b placed");
    assert_eq!(c.http_get(0, "/task/nope").status, 404);
    // `quorate task should-run` agrees, and prints the fencing term.
    let out = c.quorate(2, &["task", "should-run", "preferred"]);
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("QUORATE_TERM="));
    let out = c.quorate(0, &["task", "should-run", "preferred"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");

    // Roles: exactly the nodes with the role; 404 for a role nobody has.
    for (role, with) in [("web", vec![0, 1]), ("import", vec![1, 2])] {
        let got: Vec<usize> = all
            .iter()
            .copied()
            .filter(|&i| c.http_get(i, &format!("/role/{role}")).status == 200)
            .collect();
        assert_eq!(got, with, "/role/{role}");
    }
    assert_eq!(c.http_get(0, "/role/nobody").status, 404);

    // n3 fails: "preferred" moves to n1, never running on two nodes at once.
    let clock = Stopwatch::start();
    c.kill(2);
    let alive = [0, 1];
    assert_eq!(exactly_one(&c, "preferred", &alive), Some(0));
    println!(
        "prefer:n3,n1 moved to n1 {:?} after n3 was killed",
        clock.elapsed()
    );
    if spread_a == 2 {
        assert!(exactly_one(&c, "spread-a", &alive).is_some());
    }
    assert!(exactly_one(&c, "on-primary", &alive).is_some());
}

#[test]
fn a_hung_check_never_slows_health_or_heartbeats() {
    let c = TestCluster::builder(3)
        .extra(
            0,
            "[app]\ncheck = \"exec:sleep 100000\"\ninterval = \"200ms\"\ntimeout = \"300ms\"\n",
        )
        .start();
    assert!(wait_until(SETTLE, || c.sees_all_alive(1)));
    assert!(wait_until(SETTLE, || check_of(&c, 0, "n1", "app")
        .as_deref()
        == Some("hung")));
    let mut took = Vec::new();
    for _ in 0..200 {
        let clock = Stopwatch::start();
        let r = c.http_get(0, "/health");
        took.push(clock.elapsed());
        assert_eq!(r.status, 503);
    }
    took.sort();
    let p99 = took[took.len() * 99 / 100];
    println!(
        "/health with a hung app check: p50 {:?}, p99 {:?}",
        took[100], p99
    );
    // Generous (the 10 ms goal is the checks benchmark's): the point is that /health never
    // waits for the stuck check, whose timeout is 300 ms.
    assert!(
        took[199] < Duration::from_millis(250),
        "max {:?}",
        took[199]
    );
    // Heartbeats keep flowing: n2 hears n1 all along.
    for _ in 0..10 {
        let m = c.member(1, "n1").unwrap();
        assert_eq!(m["state"], "alive");
        assert!(m["last_seen_ms"].as_u64().unwrap() < 1000, "{m:#}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn shared_mounts_of_different_storage_are_both_flagged() {
    if !can_unshare() {
        eprintln!("SKIP: needs root for mount namespaces (CI runs as root)");
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let point = root.path().join("repo");
    let (a, b) = (root.path().join("store-a"), root.path().join("store-b"));
    for d in [&point, &a, &b] {
        fs::create_dir_all(d).unwrap();
    }
    let mount = format!(
        "[[mount]]\npath = \"{}\"\nexpect_mount = true\nwritable = true\nshared = true\ninterval = \"200ms\"\n",
        point.display()
    );
    let mut c = TestCluster::builder(2).extra_all(&mount).build();
    let wa = bind_wrapper(&a, &point);
    let wb = bind_wrapper(&b, &point);
    c.set_wrapper(0, &wa.iter().map(String::as_str).collect::<Vec<_>>());
    c.set_wrapper(1, &wb.iter().map(String::as_str).collect::<Vec<_>>());
    c.start(0);
    c.start(1);
    assert!(
        wait_until(SETTLE, || {
            check_of(&c, 0, "n1", "mounts").as_deref() == Some("fail")
                && check_of(&c, 1, "n2", "mounts").as_deref() == Some("fail")
        }),
        "different storage not flagged: {:#}\n{:#}",
        c.cluster(0),
        c.cluster(1)
    );
    let m = c.member(0, "n1").unwrap();
    assert!(
        m["check_reasons"]["mounts"]
            .as_str()
            .unwrap_or("")
            .contains("n2"),
        "{m:#}"
    );

    // The same storage on both: ok.
    c.kill(0);
    c.kill(1);
    c.set_wrapper(1, &wa.iter().map(String::as_str).collect::<Vec<_>>());
    c.start(0);
    c.start(1);
    assert!(
        wait_until(SETTLE, || (0..2).all(|i| check_of(
            &c,
            i,
            &format!("n{}", i + 1),
            "mounts"
        )
        .as_deref()
            == Some("ok"))),
        "same storage not ok: {:#}",
        c.cluster(0)
    );
}

#[test]
fn a_skewed_wall_clock_shows_its_offset_and_only_that_node_is_at_fault() {
    let mut c = TestCluster::builder(3).build();
    c.set_env(2, "QUORATE_FAULT_WALL_SKEW_MS", "2000");
    for i in 0..3 {
        c.start(i);
    }
    assert!(
        wait_until(SETTLE, || {
            c.member(0, "n3").is_some_and(|m| {
                m["clock_offset_ms"]
                    .as_f64()
                    .is_some_and(|o| (1500.0..2500.0).contains(&o))
                    && m["checks"]["clock"] == "fail"
            })
        }),
        "{:#}",
        c.cluster(0)
    );
    assert_eq!(check_of(&c, 0, "n1", "clock").as_deref(), Some("ok"));
    assert_eq!(check_of(&c, 0, "n2", "clock").as_deref(), Some("ok"));
    // Never a reason to move the primary or fail health.
    assert!(all_healthy(&c));
}

#[test]
fn drain_hands_over_then_answers_the_drain_code_and_expires() {
    let c = TestCluster::builder(3)
        .extra_all("[haproxy_agent]\nlisten = \"127.0.0.1:0\"\nmaint_after = \"1s\"\n")
        .start();
    let p = one_primary(&c);
    assert!(wait_until(SETTLE, || all_healthy(&c)));
    let out = c.quorate(p, &["drain", "--reason", "kernel update", "--for", "4s"]);
    assert!(out.status.success(), "{out:?}");
    // It handed the primary over first.
    let addrs = addrs(&c);
    assert!(wait_until(SETTLE, || current_primary(&addrs).is_some_and(|q| q != p)));
    let h = c.http_get(p, "/health");
    assert_eq!(h.status, 404, "{}", h.body);
    assert!(h.body.contains("\"status\":\"draining\""), "{}", h.body);
    assert_eq!(c.http_get(p, "/health?fail=503").status, 503);
    // Everyone sees who drained it and why.
    let other = (p + 1) % 3;
    assert!(wait_until(Duration::from_secs(5), || {
        c.member(other, c.id(p))
            .is_some_and(|m| m["draining"] == true && m["drain"]["reason"] == "kernel update")
    }));
    // It expires by itself.
    assert!(
        wait_until(Duration::from_secs(10), || c.http_get(p, "/health").status
            == 200),
        "drain did not expire"
    );
}

#[test]
fn drain_of_another_node_is_gossiped_to_it() {
    let c = TestCluster::builder(3).start();
    assert!(wait_until(SETTLE, || all_healthy(&c)));
    let out = c.quorate(0, &["drain", "n3", "--reason", "disk"]);
    assert!(out.status.success(), "{out:?}");
    assert!(wait_until(Duration::from_secs(5), || c
        .http_get(2, "/health")
        .status
        == 404));
    let out = c.quorate(1, &["undrain", "n3"]);
    assert!(out.status.success(), "{out:?}");
    assert!(wait_until(Duration::from_secs(5), || c
        .http_get(2, "/health")
        .status
        == 200));
}

#[test]
fn a_node_on_a_newer_version_waits_for_the_upgrade_gate() {
    let root = tempfile::tempdir().unwrap();
    let mut b = TestCluster::builder(3);
    for i in 0..3 {
        let f = root.path().join(format!("VERSION-n{}", i + 1));
        fs::write(&f, "5.2.1\n").unwrap();
        b = b.extra(i, &format!("[app]\nversion_file = \"{}\"\n", f.display()));
    }
    let mut c = b.start();
    let p = one_primary(&c);
    let up = (p + 1) % 3;
    assert!(wait_until(SETTLE, || all_healthy(&c)));
    c.kill(up);
    fs::write(root.path().join(format!("VERSION-n{}", up + 1)), "5.3.0\n").unwrap();
    c.start(up);
    assert!(
        wait_until(SETTLE, || {
            c.http(up, "GET", "/ready")
                .is_ok_and(|r| r.status == 503 && r.body.contains("upgrade-held"))
        }),
        "{}",
        c.http_get(up, "/ready").body
    );
    // The primary says which node to allow next, once the restarted node's state reached
    // it.
    let upgrade_status = || {
        let out = c.quorate(p, &["upgrade", "status"]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let next = format!("upgrade allow` on {}", c.id(up));
    assert!(
        wait_until(SETTLE, || upgrade_status().contains(&next)),
        "{}",
        upgrade_status()
    );
    let out = c.quorate(up, &["upgrade", "allow"]);
    assert!(out.status.success(), "{out:?}");
    assert!(wait_until(SETTLE, || c.is_ready(up)));
    assert!(
        nodes(&c.cluster(up))
            .iter()
            .any(|n| n["version"]["app"] == "5.3.0")
    );
}

#[test]
fn a_mount_that_stops_answering_is_hung_and_never_slows_health() {
    // A FUSE mount whose daemon is stopped blocks every access, as a hung NFS server does.
    let Some(fuse) = StallableMount::temporary() else {
        eprintln!("SKIP: needs root, /dev/fuse and bindfs (scripts/test.sh installs it)");
        return;
    };
    let mnt = fuse.path().to_owned();
    let c = TestCluster::builder(3)
        .extra(
            0,
            &format!(
                "[[mount]]\npath = \"{}\"\nexpect_mount = true\nfstype = \"fuse\"\nwritable = true\ninterval = \"200ms\"\ntimeout = \"300ms\"\n",
                mnt.display()
            ),
        )
        .start();
    assert!(wait_until(SETTLE, || all_healthy(&c)), "{:#}", c.cluster(0));

    fuse.stall();
    assert!(
        wait_until(Duration::from_secs(10), || {
            check_of(&c, 0, "n1", "mounts").as_deref() == Some("hung")
        }),
        "{:#}",
        c.cluster(0)
    );
    // /health answers at once, with the reason, while the mount check is stuck.
    let mut took = Vec::new();
    for _ in 0..100 {
        let clock = Stopwatch::start();
        let r = c.http_get(0, "/health");
        took.push(clock.elapsed());
        assert_eq!(r.status, 503);
        assert!(r.body.contains("\"mount\""), "{}", r.body);
    }
    took.sort();
    println!(
        "/health with a hung mount: p50 {:?}, max {:?}",
        took[50], took[99]
    );
    // Generous: the point is that it never waits for the stuck check (timeout 300 ms).
    assert!(took[99] < Duration::from_millis(250), "max {:?}", took[99]);
    // Heartbeats keep flowing, and the node is not primary while it cannot use the share.
    let m = c.member(1, "n1").unwrap();
    assert_eq!(m["state"], "alive", "{m:#}");
    assert!(m["last_seen_ms"].as_u64().unwrap() < 1000, "{m:#}");
    assert_ne!(c.http_get(0, "/primary").status, 200);

    // The server answers again: the check recovers by itself.
    fuse.resume();
    assert!(
        wait_until(SETTLE, || c.http_get(0, "/health").status == 200),
        "{:#}",
        c.cluster(0)
    );
}
