//! Failover and handover latency with real agents on loopback (issue 3's benchmark).
//!
//! ```text
//! cargo build --release --workspace --bins
//! cargo bench -p quorate-tests --bench failover            # 50 trials each
//! QUORATE_BENCH_TRIALS=200 cargo bench -p quorate-tests --bench failover
//! QUORATE_BENCH_ONLY=lean cargo bench -p quorate-tests --bench failover  # rows naming it
//! ```
//!
//! Three measurements, each over N trials on a fresh-converged 3-node cluster:
//! - SIGKILL of the primary → the first `/primary` 200 from another node (default
//!   timing, then the fast and the lean presets from docs/operator-guide.md);
//! - SIGTERM of the primary → the first 200 elsewhere, and the *gap*: from the old
//!   primary's last 200 to the new one's first.
//!
//! Pollers ask every node's `/primary` in a tight loop (about every 1 ms).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use quorate_tests::primary::current_primary;
use quorate_tests::{TestCluster, bench, http_request, now, wait_until};

struct Sample {
    /// Trigger → first 200 elsewhere.
    to_new: Duration,
    /// Old primary's last 200 → new primary's first 200 (handover only).
    gap: Option<Duration>,
}

/// Polls each node's /primary until `stop`; returns (node, received, status 200?) events.
fn poll(
    addrs: Vec<SocketAddr>,
    stop: Arc<AtomicBool>,
) -> Vec<std::thread::JoinHandle<Vec<(usize, Instant, bool)>>> {
    addrs
        .into_iter()
        .enumerate()
        .map(|(i, a)| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut out = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let ok = http_request(a, "GET", "/primary").is_ok_and(|r| r.status == 200);
                    out.push((i, now(), ok));
                    std::thread::sleep(Duration::from_micros(500));
                }
                out
            })
        })
        .collect()
}

fn trial(c: &mut TestCluster, graceful: bool) -> Option<Sample> {
    let addrs: Vec<SocketAddr> = (0..3).map(|i| c.http_addr(i)).collect();
    let mut p = None;
    if !wait_until(Duration::from_secs(20), || {
        p = current_primary(&addrs);
        p.is_some()
    }) {
        return None;
    }
    let p = p?;
    let stop = Arc::new(AtomicBool::new(false));
    let pollers = poll(addrs.clone(), stop.clone());
    std::thread::sleep(Duration::from_millis(50));
    let trigger = now();
    if graceful {
        c.signal(p, libc::SIGTERM);
    } else {
        c.kill(p);
    }
    let others: Vec<usize> = (0..3).filter(|&i| i != p).collect();
    let moved = wait_until(Duration::from_secs(10), || {
        others
            .iter()
            .any(|&i| http_request(addrs[i], "GET", "/primary").is_ok_and(|r| r.status == 200))
    });
    std::thread::sleep(Duration::from_millis(50));
    stop.store(true, Ordering::Relaxed);
    let events: Vec<(usize, Instant, bool)> = pollers
        .into_iter()
        .flat_map(|t| t.join().unwrap_or_default())
        .collect();
    if !moved {
        return None;
    }
    let first_new = events
        .iter()
        .filter(|(i, t, ok)| *i != p && *ok && *t > trigger)
        .map(|(_, t, _)| *t)
        .min()?;
    let last_old = events
        .iter()
        .filter(|(i, _, ok)| *i == p && *ok)
        .map(|(_, t, _)| *t)
        .max();
    if graceful {
        let _ = c.wait_exit(p, Duration::from_secs(10));
    }
    c.start(p);
    let _ = c.wait_converged(Duration::from_secs(20));
    // Let the restarted node finish its no-vote window and settle.
    std::thread::sleep(Duration::from_millis(600));
    Some(Sample {
        to_new: first_new.saturating_duration_since(trigger),
        gap: last_old.map(|l| first_new.saturating_duration_since(l)),
    })
}

fn run(name: &str, extra: &str, graceful: bool, trials: usize) {
    // `QUORATE_BENCH_ONLY=lean`: only the rows whose name says so.
    if std::env::var("QUORATE_BENCH_ONLY").is_ok_and(|only| !name.contains(&only)) {
        return;
    }
    let mut c = TestCluster::builder(3).extra_all(extra).start();
    let _ = c.wait_converged(Duration::from_secs(20));
    let mut to_new = Vec::new();
    let mut gaps = Vec::new();
    let mut failures = 0;
    for _ in 0..trials {
        match trial(&mut c, graceful) {
            Some(s) => {
                to_new.push(s.to_new);
                if let Some(g) = s.gap {
                    gaps.push(g);
                }
            }
            None => failures += 1,
        }
    }
    bench::row(name, to_new, failures, 0);
    if graceful {
        bench::row(
            &format!("{name}: gap (last old 200 → first new 200)"),
            gaps,
            0,
            0,
        );
    }
}

fn main() {
    if !bench::is_bench_run() {
        return;
    }
    let trials = bench::trials(50);
    bench::header();
    run(
        "SIGKILL primary → 200 elsewhere (defaults)",
        "",
        false,
        trials,
    );
    run(
        "SIGKILL primary → 200 elsewhere (fast preset)",
        &bench::fast_preset(),
        false,
        trials,
    );
    run(
        "SIGKILL primary → 200 elsewhere (lean preset)",
        &bench::lean_preset(),
        false,
        trials,
    );
    run(
        "SIGTERM primary → 200 elsewhere (handover)",
        "",
        true,
        trials,
    );
}
