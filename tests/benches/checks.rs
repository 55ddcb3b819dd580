//! The node checks, measured with real agents on loopback (issue 4's benchmark).
//!
//! ```text
//! cargo build --release --workspace --bins
//! cargo bench -p quorate-tests --bench checks            # 20 trials each
//! QUORATE_BENCH_TRIALS=50 cargo bench -p quorate-tests --bench checks
//! ```
//!
//! - config drift: an edit on one node → every node's `/cluster` shows the drift, and the
//!   revert → `ok` everywhere again (needs root for mount namespaces; skipped otherwise);
//! - app check: the primary's check starts failing → another node answers `/primary`
//!   200, against `fall × interval + 200 ms`;
//! - `/health` latency on a node whose app check hangs forever, and on one without a
//!   check, against the 10 ms goal;
//! - HAProxy (the operator guide's config) in front of 3 agents: SIGKILL of the primary
//!   → HAProxy routes to the new one, and how many requests failed meanwhile.

use std::fs;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use quorate_tests::haproxy::Haproxy;
use quorate_tests::mountns::{bind_wrapper, can_unshare};
use quorate_tests::primary::current_primary;
use quorate_tests::{
    Stopwatch, TestCluster, bench, http_request, now, wait_until, wait_until_every,
};

const SETTLE: Duration = Duration::from_secs(20);
const POLL: Duration = Duration::from_millis(2);

fn addrs(c: &TestCluster) -> Vec<SocketAddr> {
    (0..c.members()).map(|i| c.http_addr(i)).collect()
}

fn wait_primary(c: &TestCluster) -> Option<usize> {
    let addrs = addrs(c);
    let mut p = None;
    wait_until(SETTLE, || {
        p = current_primary(&addrs);
        p.is_some()
    });
    p
}

/// The names node `i` lists in `differs_from` for its own first config set.
fn differs(c: &TestCluster, i: usize) -> Option<Vec<String>> {
    let m = c.member(i, c.id(i))?;
    let list = m["config"][0]["differs_from"].as_array()?;
    Some(
        list.iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
    )
}

fn write_setting(dir: &Path, node: &str, setting: &str) {
    let _ = fs::create_dir_all(dir);
    let _ = fs::write(
        dir.join("app.xml"),
        format!("<site url=\"https://{node}.example\"/>\n<setting>{setting}</setting>\n"),
    );
}

fn drift(trials: usize) {
    if !can_unshare() {
        println!("| config drift | skipped: needs root for mount namespaces | | | | | |");
        return;
    }
    let Ok(root) = tempfile::tempdir() else {
        return;
    };
    let etc = root.path().join("etc");
    let _ = fs::create_dir_all(&etc);
    let set = format!(
        "[[config]]\nname = \"app\"\npaths = [\"{}/*.xml\"]\nignore = ['site url=']\n",
        etc.display()
    );
    let mut c = TestCluster::builder(3).extra_all(&set).build();
    for i in 0..3 {
        let dir = root.path().join(c.id(i));
        write_setting(&dir, c.id(i), "a");
        let wrap = bind_wrapper(&dir, &etc);
        c.set_wrapper(i, &wrap.iter().map(String::as_str).collect::<Vec<_>>());
        c.start(i);
    }
    let all_ok = |c: &TestCluster| (0..3).all(|i| differs(c, i).is_some_and(|d| d.is_empty()));
    let all_drift = |c: &TestCluster| {
        (0..3)
            .all(|i| differs(c, i).is_some_and(|d| if i == 2 { d.len() == 2 } else { d == ["n3"] }))
    };
    if !wait_until(SETTLE, || all_ok(&c)) {
        println!("| config drift | cluster did not agree at start | | | | | |");
        return;
    }
    let (mut shown, mut cleared, mut failed) = (Vec::new(), Vec::new(), 0);
    let n3 = root.path().join("n3");
    for k in 0..trials {
        let start = Stopwatch::start();
        write_setting(&n3, "n3", &format!("b{k}"));
        if !wait_until_every(Duration::from_secs(5), POLL, || all_drift(&c)) {
            failed += 1;
            write_setting(&n3, "n3", "a");
            wait_until(SETTLE, || all_ok(&c));
            continue;
        }
        shown.push(start.elapsed());
        let start = Stopwatch::start();
        write_setting(&n3, "n3", "a");
        if wait_until_every(Duration::from_secs(5), POLL, || all_ok(&c)) {
            cleared.push(start.elapsed());
        } else {
            failed += 1;
        }
    }
    bench::row(
        "config edit on one node → drift shown on all 3",
        shown,
        failed,
        0,
    );
    bench::row("config revert → ok on all 3", cleared, 0, 0);
}

fn app_failover(trials: usize) {
    let Ok(flags) = tempfile::tempdir() else {
        return;
    };
    let mut b = TestCluster::builder(3);
    for i in 0..3 {
        b = b.extra(
            i,
            &format!(
                "[app]\ncheck = \"exec:test ! -e {}/n{}.fail\"\ninterval = \"200ms\"\ntimeout = \"1s\"\nrise = 2\nfall = 2\n",
                flags.path().display(),
                i + 1
            ),
        );
    }
    let c = b.start();
    let addrs = addrs(&c);
    let (mut moved, mut failed) = (Vec::new(), 0);
    for _ in 0..trials {
        let Some(p) = wait_primary(&c) else {
            failed += 1;
            continue;
        };
        let flag = flags.path().join(format!("{}.fail", c.id(p)));
        let start = Stopwatch::start();
        let _ = fs::write(&flag, "");
        let ok = wait_until_every(Duration::from_secs(5), POLL, || {
            current_primary(&addrs).is_some_and(|q| q != p)
        });
        if ok {
            moved.push(start.elapsed());
        } else {
            failed += 1;
        }
        let _ = fs::remove_file(&flag);
        // Let the node pass its rise again before the next trial.
        wait_until(SETTLE, || {
            c.http(p, "GET", "/health").is_ok_and(|r| r.status == 200)
        });
    }
    bench::row(
        "app check fails on the primary → 200 elsewhere (interval 200 ms, fall 2; goal ≤ 600)",
        moved,
        failed,
        0,
    );
}

fn health_latency(requests: usize) {
    let Some(c) = bench::hung_app_cluster(3, SETTLE) else {
        println!("| /health with a hung app check | check never hung | | | | | |");
        return;
    };
    for (i, name) in [
        (0, "/health, app check hung forever (goal p99 ≤ 10)"),
        (1, "/health, no app check"),
    ] {
        let mut took = Vec::with_capacity(requests);
        let mut failed = 0;
        for _ in 0..requests {
            let start = Stopwatch::start();
            match http_request(c.http_addr(i), "GET", "/health") {
                Ok(_) => took.push(start.elapsed()),
                Err(_) => failed += 1,
            }
        }
        bench::row(name, took, failed, 2);
    }
}

fn haproxy_failover(trials: usize) {
    let Ok(dir) = tempfile::tempdir() else {
        return;
    };
    let agents: Vec<u16> = (0..3)
        .map(|_| quorate_tests::cluster::free_port())
        .collect();
    let mut b = TestCluster::builder(3);
    for (i, port) in agents.iter().enumerate() {
        b = b.extra(
            i,
            &format!("[haproxy_agent]\nlisten = \"127.0.0.1:{port}\"\n"),
        );
    }
    let mut c = b.start();
    let Some(h) = Haproxy::start(dir.path(), &c, &agents) else {
        println!("| HAProxy failover | skipped: haproxy not installed | | | | | |");
        return;
    };
    let (mut routed, mut failed_requests, mut failed) = (Vec::new(), Vec::new(), 0);
    for _ in 0..trials {
        let Some(p) = wait_primary(&c) else {
            failed += 1;
            continue;
        };
        if !wait_until(SETTLE, || h.routed().as_deref() == Some(c.id(p))) {
            failed += 1;
            continue;
        }
        let dead = c.id(p).to_owned();
        let start = now();
        c.kill(p);
        let mut lost = 0u32;
        let deadline = start + Duration::from_secs(10);
        let mut done = false;
        while now() < deadline {
            match h.routed() {
                Some(n) if n != dead => {
                    done = true;
                    break;
                }
                _ => lost += 1,
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        if done {
            routed.push(now().saturating_duration_since(start));
            failed_requests.push(lost);
        } else {
            failed += 1;
        }
        c.start(p);
        let _ = c.wait_converged(SETTLE);
        std::thread::sleep(Duration::from_millis(600));
    }
    failed_requests.sort_unstable();
    bench::row(
        "HAProxy: SIGKILL primary → routed to the new primary",
        routed,
        failed,
        0,
    );
    println!(
        "| HAProxy: requests failed per failover (1 ms apart) | {} | {} | {} | {} | {} | |",
        failed_requests.len(),
        failed_requests
            .get(failed_requests.len() / 2)
            .copied()
            .unwrap_or(0),
        failed_requests
            .get((failed_requests.len().saturating_sub(1) * 99) / 100)
            .copied()
            .unwrap_or(0),
        failed_requests.last().copied().unwrap_or(0),
        failed_requests.first().copied().unwrap_or(0),
    );
}

fn main() {
    if !bench::is_bench_run() {
        return;
    }
    let trials = bench::trials(20);
    bench::header();
    drift(trials);
    app_failover(trials);
    health_latency(trials * 100);
    haproxy_failover(trials);
}
