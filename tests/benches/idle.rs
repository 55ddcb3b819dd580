//! What an idle agent costs, and where the time goes, beside keepalived measured in the
//! same run (issue "Efficiency, fleets and duress"; targets: mean ≤ 0.15 % of a core,
//! primary ≤ 0.3 %, RSS ≤ 8 MiB, 5 nodes, default timing).
//!
//! ```text
//! cargo build --release --workspace --bins
//! cargo bench -p quorate-tests --bench idle                    # 5 nodes, 60 s
//! QUORATE_BENCH_NODES=5,32,64 cargo bench -p quorate-tests --bench idle
//! QUORATE_BENCH_SECONDS=30 QUORATE_BENCH_TRACE_SECONDS=0 cargo bench -p quorate-tests --bench idle
//! QUORATE_BENCH_NODES=64 QUORATE_BENCH_VOTERS=5 cargo bench -p quorate-tests --bench idle
//! ```
//!
//! `QUORATE_BENCH_TIMING=lean` (or `fast`) runs the agents with that preset of the
//! operator guide instead of the default timing.
//!
//! `QUORATE_BENCH_VOTERS=V` (default: every node votes) makes a fleet: n1…nV bootstrap
//! the cluster from their own list, the others (whose `peers` list every node) are
//! added one at a time with `member add --non-voter` and then started; they talk to the
//! voters only (issue 15).
//!
//! For each cluster size: real agents on loopback, converged and elected (and n1, the
//! top priority, primary: a cold start's other winner hands over to it once its
//! `preempt_delay` has passed, and that belongs before the window), then a window
//! of `QUORATE_BENCH_SECONDS` (default 60) in which nothing else touches them. Per agent:
//! CPU from every thread's `schedstat` (ns on a CPU), RSS, context switches per second
//! (the wake-ups of an idle process), and packets per second each way (nftables
//! counters on the agent's UDP port, in a table of this bench's own). Then, for one
//! secondary, the primary and keepalived's master, one after the other so the tracers'
//! cost stays out of the main window, each over `QUORATE_BENCH_TRACE_SECONDS` (default
//! 10; 0 skips them): `strace -c -f` (system calls by count), `strace -e epoll_wait` on
//! the event loop's thread (wake-ups by cause: a timer, a packet, write readiness alone,
//! an unpark alone), and `perf stat` (task-clock, context switches, the loop's system
//! calls from their tracepoints, and instructions where the machine counts them).
//!
//! keepalived (three instances in network namespaces, VRRPv3, unicast, `advert_int
//! 0.1`; [`quorate_tests::keepalived`]) runs through every window and is measured the
//! same way, so the figures are printed as ratios to it as well: a busy machine moves
//! both. Without root, nftables or keepalived the parts that need them are skipped with a
//! note. The load average is printed with every window.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use quorate_tests::keepalived::{self, Keepalived};
use quorate_tests::primary::current_primary;
use quorate_tests::procstat::{self, ProcSample, Usage};
use quorate_tests::{Stopwatch, TestCluster, bench, netcut};

fn env_or<T: std::str::FromStr>(key: &str, default: T) -> T {
    std::env::var(key)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// Packet counters per agent UDP port: an nftables table of this process's own.
struct Counters {
    table: String,
}

impl Counters {
    fn install(ports: &[u16]) -> Option<Self> {
        if !netcut::available() {
            return None;
        }
        Self::remove_stale();
        let table = format!("quorate_idle_{}", std::process::id());
        let mut s = format!("table inet {table} {{\n");
        for p in ports {
            s.push_str(&format!(
                "  counter out_{p} {{ }}\n  counter in_{p} {{ }}\n"
            ));
        }
        // On loopback every packet passes the output hook once: counted there by its
        // source port (sent by that agent) and its destination port (sent to it).
        s.push_str("  chain out {\n    type filter hook output priority 0; policy accept;\n");
        for p in ports {
            s.push_str(&format!(
                "    udp sport {p} counter name out_{p}\n    udp dport {p} counter name in_{p}\n"
            ));
        }
        s.push_str("  }\n}\n");
        netcut::nft(&s).ok()?;
        Some(Self { table })
    }

    /// Removes the tables of earlier runs whose process is gone (a run that was killed).
    fn remove_stale() {
        let Ok(out) = std::process::Command::new("nft")
            .args(["list", "tables"])
            .output()
        else {
            return;
        };
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let Some(pid) = line
                .strip_prefix("table inet quorate_idle_")
                .and_then(|p| p.trim().parse::<u32>().ok())
            else {
                continue;
            };
            if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
                let _ = netcut::nft(&format!("delete table inet quorate_idle_{pid}\n"));
            }
        }
    }

    /// Counter name → packets.
    fn read(&self) -> BTreeMap<String, u64> {
        let out = std::process::Command::new("nft")
            .args(["list", "counters", "table", "inet", &self.table])
            .output();
        let text = out
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        let mut m = BTreeMap::new();
        let mut name = None;
        for l in text.lines() {
            let f: Vec<&str> = l.split_whitespace().collect();
            match f.as_slice() {
                ["counter", n, ..] => name = Some((*n).to_owned()),
                ["packets", p, ..] => {
                    if let (Some(n), Ok(p)) = (name.take(), p.parse()) {
                        m.insert(n, p);
                    }
                }
                _ => {}
            }
        }
        m
    }
}

impl Drop for Counters {
    fn drop(&mut self) {
        let _ = netcut::nft(&format!("delete table inet {}\n", self.table));
    }
}

/// One measured process (an agent, or all processes of one keepalived instance).
struct Row {
    name: String,
    role: &'static str,
    usage: Usage,
    /// Packets per second (in, out), if counted.
    pps: Option<(f64, f64)>,
}

impl Row {
    fn cpu(&self, wall: f64) -> f64 {
        self.usage.cpu_ns as f64 / 1e9 / wall * 100.0
    }
    fn wakeups(&self, wall: f64) -> f64 {
        self.usage.switches as f64 / wall
    }
}

fn sum_usage(us: Vec<Usage>) -> Usage {
    let mut total = Usage::default();
    for u in us {
        total.cpu_ns += u.cpu_ns;
        total.switches += u.switches;
        total.rss_kib += u.rss_kib;
        for (k, v) in u.by_thread {
            *total.by_thread.entry(k).or_default() += v;
        }
    }
    total
}

fn samples(pids: &[u32]) -> Vec<ProcSample> {
    pids.iter()
        .map(|p| procstat::sample(*p).unwrap_or_default())
        .collect()
}

fn print_rows(rows: &[Row], wall: f64) {
    println!(
        "| process | role | CPU % of a core | RSS MiB | wake-ups/s | packets/s in | packets/s out |"
    );
    println!("|---|---|---|---|---|---|---|");
    for r in rows {
        let (pin, pout) = r.pps.map_or(("–".to_owned(), "–".to_owned()), |(i, o)| {
            (format!("{i:.1}"), format!("{o:.1}"))
        });
        println!(
            "| {} | {} | {:.3} | {:.1} | {:.1} | {pin} | {pout} |",
            r.name,
            r.role,
            r.cpu(wall),
            r.usage.rss_kib as f64 / 1024.0,
            r.wakeups(wall),
        );
    }
}

/// Mean of `f` over rows.
fn mean(rows: &[&Row], f: impl Fn(&Row) -> f64) -> f64 {
    if rows.is_empty() {
        return 0.0;
    }
    rows.iter().map(|r| f(r)).sum::<f64>() / rows.len() as f64
}

struct Baseline {
    master_cpu: f64,
    backup_cpu: f64,
    master_wake: f64,
    backup_wake: f64,
}

/// Starts `n` agents of which the first `voters` vote (see the module documentation);
/// whether they converged: every node sees every node it watches alive.
fn start_fleet(n: usize, voters: usize, settle: Duration) -> (TestCluster, bool) {
    let timing = &bench::timing_table(&bench::timing().1);
    if voters >= n {
        let c = TestCluster::builder(n).extra_all(timing).start();
        let converged = c.wait_converged(settle);
        return (c, converged);
    }
    let mut c = TestCluster::builder(n).extra_all(timing).build();
    for v in 0..voters {
        let mut config = c.config(v).clone();
        config.peers = (0..voters)
            .filter(|&j| j != v)
            .map(|j| c.quic_addr(j))
            .collect();
        c.set_config(v, config);
        c.start(v);
    }
    if !quorate_tests::wait_until(settle, || (0..voters).all(|v| c.is_ready(v))) {
        return (c, false);
    }
    for i in voters..n {
        let change = proto::MemberChange::Add {
            node: c.id(i).parse().unwrap(),
            addr: c.quic_addr(i).to_string(),
            voter: false,
        };
        let added = quorate_tests::wait_until(settle, || {
            matches!(
                c.ctl(0)
                    .command(proto::ctl::CtlCommand::Member(change.clone())),
                Ok(quorate_agent::ctl::client::Outcome::Done(_))
            )
        });
        if !added {
            println!("(member add {} --non-voter never done)", c.id(i));
            return (c, false);
        }
    }
    for i in voters..n {
        c.start(i);
    }
    let converged = quorate_tests::wait_until(settle, || {
        (0..n).all(|i| {
            c.try_cluster(i).is_some_and(|v| {
                let listed = quorate_tests::cluster::nodes(&v);
                let want = if i < voters { n } else { voters + 1 };
                listed.len() == want && listed.iter().all(|m| m["state"] == "alive")
            })
        })
    });
    (c, converged)
}

fn measure(n: usize, voters: usize, secs: u64, trace_secs: u64, ka: Option<&Keepalived>) {
    let voters = voters.min(n);
    println!(
        "\n## {n} agents ({voters} voters), {}, idle, {secs} s window\n",
        bench::timing().0
    );
    let settle = Duration::from_secs(30 + n as u64);
    // From the first process started to every node seeing every node it watches alive
    // (for a fleet: the non-voters added one at a time, each command included).
    let cold_start = Stopwatch::start();
    let (c, converged) = start_fleet(n, voters, settle);
    let converge_s = cold_start.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_secs(3));
    let addrs: Vec<_> = (0..n).map(|i| c.http_addr(i)).collect();
    let elected = current_primary(&addrs);
    // A cold start may elect another node than n1, the top priority, which takes the
    // role over once its preempt_delay has passed: that planned handover belongs before
    // the window, not in it.
    let preempted = Stopwatch::start();
    let top = quorate_tests::wait_until(settle, || current_primary(&addrs) == Some(0));
    let primary = current_primary(&addrs);
    let term0 = c.try_cluster(0).and_then(|v| v["term"].as_u64());
    println!(
        "converged: {converged} in {converge_s:.1} s from a cold start; elected first: {}; \
         the top priority primary: {top}{}; primary: {}; term {term0:?}; load average before: {}",
        elected.map_or("none".to_owned(), |p| c.id(p).to_owned()),
        if elected == Some(0) {
            String::new()
        } else {
            format!(" after {:.1} s more", preempted.elapsed().as_secs_f64())
        },
        primary.map_or("none".to_owned(), |p| c.id(p).to_owned()),
        loadavg()
    );
    let pids: Vec<u32> = (0..n).map(|i| c.pid(i)).collect();
    let ports: Vec<u16> = (0..n).map(|i| c.quic_addr(i).port()).collect();
    let counters = Counters::install(&ports);
    if counters.is_none() {
        println!("(no nftables: packets not counted)");
    }
    let ka_pids: Vec<Vec<u32>> = ka.map_or(Vec::new(), |k| (0..3).map(|i| k.pids(i)).collect());
    let ka_master = ka.and_then(Keepalived::master);
    let log_lines0: Vec<usize> = (0..n).map(|i| c.log(i).lines().count()).collect();

    let before = samples(&pids);
    let ka_before: Vec<Vec<ProcSample>> = ka_pids.iter().map(|p| samples(p)).collect();
    let ka_pkts0: Vec<Option<(u64, u64)>> = (0..ka_pids.len())
        .map(|i| ka.and_then(|k| k.packets(i)))
        .collect();
    let pkts0 = counters.as_ref().map(Counters::read).unwrap_or_default();
    let clock = Stopwatch::start();
    std::thread::sleep(Duration::from_secs(secs));
    let after = samples(&pids);
    let ka_after: Vec<Vec<ProcSample>> = ka_pids.iter().map(|p| samples(p)).collect();
    let ka_pkts1: Vec<Option<(u64, u64)>> = (0..ka_pids.len())
        .map(|i| ka.and_then(|k| k.packets(i)))
        .collect();
    let pkts1 = counters.as_ref().map(Counters::read).unwrap_or_default();
    let wall = clock.elapsed().as_secs_f64();
    let load_after = loadavg();

    let primary_after = current_primary(&addrs);
    let cluster_after = c.try_cluster(0);
    let term1 = cluster_after.as_ref().and_then(|v| v["term"].as_u64());
    let not_alive: Vec<String> = cluster_after
        .as_ref()
        .map(|v| {
            quorate_tests::cluster::nodes(v)
                .iter()
                .filter(|m| m["state"] != "alive")
                .map(|m| format!("{}={}", m["node"], m["state"]))
                .collect()
        })
        .unwrap_or_default();
    let mut new_lines = 0;
    let mut examples: Vec<String> = Vec::new();
    for (i, l0) in log_lines0.iter().enumerate() {
        let log = c.log(i);
        for line in log.lines().skip(*l0) {
            new_lines += 1;
            if examples.len() < 3 {
                examples.push(format!(
                    "{}: {}",
                    c.id(i),
                    line.chars().take(160).collect::<String>()
                ));
            }
        }
    }
    println!(
        "window {wall:.1} s; load average after: {load_after}; term {term0:?} → {term1:?}; \
         primary after: {}; seen not alive by n1 at the end: {not_alive:?}; log lines in the window: {new_lines}",
        primary_after.map_or("none".to_owned(), |p| c.id(p).to_owned()),
    );
    for e in &examples {
        println!("  log: {e}");
    }
    println!();

    let delta = |a: &BTreeMap<String, u64>, b: &BTreeMap<String, u64>, k: &str| {
        b.get(k)
            .copied()
            .unwrap_or(0)
            .saturating_sub(a.get(k).copied().unwrap_or(0)) as f64
            / wall
    };
    let mut rows: Vec<Row> = (0..n)
        .map(|i| Row {
            name: c.id(i).to_owned(),
            role: if Some(i) == primary {
                "primary"
            } else if i >= voters {
                "non-voter"
            } else {
                "secondary"
            },
            usage: procstat::usage(&before[i], &after[i]),
            pps: counters.as_ref().map(|_| {
                (
                    delta(&pkts0, &pkts1, &format!("in_{}", ports[i])),
                    delta(&pkts0, &pkts1, &format!("out_{}", ports[i])),
                )
            }),
        })
        .collect();
    for i in 0..ka_pids.len() {
        let us = ka_before[i]
            .iter()
            .zip(&ka_after[i])
            .map(|(b, a)| procstat::usage(b, a))
            .collect();
        rows.push(Row {
            name: format!(
                "keepalived {}",
                ka.map(|k| k.names()[i].clone()).unwrap_or_default()
            ),
            role: if Some(i) == ka_master {
                "master"
            } else {
                "backup"
            },
            usage: sum_usage(us),
            pps: match (ka_pkts0[i], ka_pkts1[i]) {
                (Some(a), Some(b)) => Some((
                    b.0.saturating_sub(a.0) as f64 / wall,
                    b.1.saturating_sub(a.1) as f64 / wall,
                )),
                _ => None,
            },
        });
    }
    print_rows(&rows, wall);

    let agents: Vec<&Row> = rows[..n].iter().collect();
    let secondaries: Vec<&Row> = agents
        .iter()
        .copied()
        .filter(|r| r.role == "secondary")
        .collect();
    let prim: Vec<&Row> = agents
        .iter()
        .copied()
        .filter(|r| r.role == "primary")
        .collect();
    let non_voters: Vec<&Row> = agents
        .iter()
        .copied()
        .filter(|r| r.role == "non-voter")
        .collect();
    let kas: Vec<&Row> = rows[n..].iter().collect();
    let master: Vec<&Row> = kas.iter().copied().filter(|r| r.role == "master").collect();
    let backups: Vec<&Row> = kas.iter().copied().filter(|r| r.role == "backup").collect();
    let max_cpu = agents.iter().map(|r| r.cpu(wall)).fold(0.0, f64::max);
    let max_rss = agents.iter().map(|r| r.usage.rss_kib).max().unwrap_or(0) as f64 / 1024.0;
    println!();
    println!("| {n} agents | CPU % | wake-ups/s | packets/s in | packets/s out | RSS MiB max |");
    println!("|---|---|---|---|---|---|");
    let pin = |r: &Row| r.pps.map_or(0.0, |p| p.0);
    let pout = |r: &Row| r.pps.map_or(0.0, |p| p.1);
    for (what, set) in [
        ("mean", &agents),
        ("secondary mean", &secondaries),
        ("non-voter mean", &non_voters),
        ("primary", &prim),
    ] {
        println!(
            "| {what} | {:.3} | {:.1} | {:.1} | {:.1} | {max_rss:.1} |",
            mean(set, |r| r.cpu(wall)),
            mean(set, |r| r.wakeups(wall)),
            mean(set, pin),
            mean(set, pout),
        );
    }
    println!("| max | {max_cpu:.3} | | | | |");
    let base = (!kas.is_empty()).then(|| Baseline {
        master_cpu: mean(&master, |r| r.cpu(wall)),
        backup_cpu: mean(&backups, |r| r.cpu(wall)),
        master_wake: mean(&master, |r| r.wakeups(wall)),
        backup_wake: mean(&backups, |r| r.wakeups(wall)),
    });
    if let Some(b) = &base {
        println!(
            "| keepalived master | {:.3} | {:.1} | {:.1} | {:.1} | {:.1} |",
            b.master_cpu,
            b.master_wake,
            mean(&master, pin),
            mean(&master, pout),
            mean(&master, |r| r.usage.rss_kib as f64 / 1024.0),
        );
        println!(
            "| keepalived backup mean | {:.3} | {:.1} | {:.1} | {:.1} | {:.1} |",
            b.backup_cpu,
            b.backup_wake,
            mean(&backups, pin),
            mean(&backups, pout),
            mean(&backups, |r| r.usage.rss_kib as f64 / 1024.0),
        );
        let ratio = |a: f64, b: f64| {
            if b > 0.0 {
                format!("{:.1}×", a / b)
            } else {
                "–".to_owned()
            }
        };
        println!(
            "\nratios ({n} agents): CPU mean/backup {}, primary/master {}; wake-ups mean/backup {}, primary/master {}",
            ratio(mean(&agents, |r| r.cpu(wall)), b.backup_cpu),
            ratio(mean(&prim, |r| r.cpu(wall)), b.master_cpu),
            ratio(mean(&agents, |r| r.wakeups(wall)), b.backup_wake),
            ratio(mean(&prim, |r| r.wakeups(wall)), b.master_wake),
        );
    } else {
        println!(
            "\n(keepalived not measured: {})",
            keepalived::unavailable().unwrap_or_default()
        );
    }

    // The arithmetic behind the levers (lease heartbeats between the primary and each
    // voter, slow ones between the others): heartbeats a node sends (= receives) per
    // second, and what each costs in packets and wake-ups.
    let t = bench::timing().1;
    let (lease_rate, slow_rate) = (
        1.0 / t.lease_heartbeat_interval.0.as_secs_f64(),
        1.0 / t.heartbeat_interval.0.as_secs_f64(),
    );
    let hb_secondary = lease_rate + slow_rate * n.saturating_sub(2) as f64;
    let hb_primary = lease_rate * n.saturating_sub(1) as f64;
    for (what, set, hb) in [
        ("secondary mean", &secondaries, hb_secondary),
        ("primary", &prim, hb_primary),
    ] {
        if set.is_empty() {
            continue;
        }
        println!(
            "per heartbeat ({what}, {hb:.0} sent and {hb:.0} received per second): {:.2} packets out, \
             {:.2} packets in, {:.2} wake-ups, {:.1} µs of CPU (sent + received counted once each)",
            mean(set, pout) / hb,
            mean(set, pin) / hb,
            mean(set, |r| r.wakeups(wall)) / (2.0 * hb),
            mean(set, |r| r.cpu(wall)) * 1e4 / (2.0 * hb),
        );
    }

    // Which thread burns the time: CPU % of a core by thread name.
    let mut names: Vec<String> = agents
        .iter()
        .flat_map(|r| r.usage.by_thread.keys().cloned())
        .collect();
    names.sort();
    names.dedup();
    println!("\n| thread | secondary mean CPU % | primary CPU % |");
    println!("|---|---|---|");
    let thread_cpu = |r: &Row, t: &str| {
        r.usage.by_thread.get(t).copied().unwrap_or(0) as f64 / 1e9 / wall * 100.0
    };
    for t in &names {
        println!(
            "| {t} | {:.4} | {:.4} |",
            mean(&secondaries, |r| thread_cpu(r, t)),
            mean(&prim, |r| thread_cpu(r, t)),
        );
    }

    if trace_secs > 0 {
        let window = Duration::from_secs(trace_secs);
        // The primary may have changed during the window (printed above): trace the one
        // that holds the role now.
        let primary = current_primary(&addrs).or(primary);
        let secondary = (0..n).find(|i| Some(*i) != primary);
        let mut traced: Vec<(String, u32)> = Vec::new();
        if let Some(s) = secondary {
            traced.push((format!("{} (secondary)", c.id(s)), pids[s]));
        }
        if let Some(p) = primary {
            traced.push((format!("{} (primary)", c.id(p)), pids[p]));
        }
        if let (Some(k), Some(m)) = (ka, ka_master)
            && let Some(v) = k.vrrp_pid(m)
        {
            traced.push((
                format!("keepalived {} (master, VRRP process)", k.names()[m]),
                v,
            ));
        }
        for (what, pid) in &traced {
            let Some(s) = procstat::strace_counts(*pid) else {
                println!("\n(no strace)");
                break;
            };
            std::thread::sleep(window);
            let rows = s.finish();
            let total: u64 = rows.iter().map(|r| r.calls).sum();
            let top: Vec<String> = rows
                .iter()
                .take(8)
                .map(|r| format!("{} {:.1}", r.name, r.calls as f64 / trace_secs as f64))
                .collect();
            println!(
                "\nstrace -c -f, {what}, {trace_secs} s: {:.1} syscalls/s; per second: {}",
                total as f64 / trace_secs as f64,
                top.join(", ")
            );
        }
        for (what, pid) in &traced {
            // The driver's event loop runs on the main thread (its pid).
            if let Some(w) = procstat::strace_wakes(*pid, window) {
                let per_s = |x: u64| x as f64 / trace_secs as f64;
                println!(
                    "wake-ups of the main thread by cause, {what}, {trace_secs} s (strace -e epoll_wait): \
                     timer {:.1}/s, packet in {:.1}/s, write readiness only (EPOLLOUT) {:.1}/s, unpark only {:.1}/s",
                    per_s(w.timer),
                    per_s(w.input),
                    per_s(w.write_ready),
                    per_s(w.unpark),
                );
            }
        }
        for (what, pid) in &traced {
            let m = procstat::perf_stat(*pid, window);
            let per_s = |k: &str| match m.get(k) {
                Some(Some(v)) => format!("{:.1}", v / trace_secs as f64),
                Some(None) => "not supported".to_owned(),
                None => "–".to_owned(),
            };
            println!(
                "perf stat, {what}, {trace_secs} s: instructions/s {}, task-clock ms/s {}, context switches/s {}; \
                 per second epoll_wait {}, recvmmsg {}, sendmsg {}, write {}",
                per_s("instructions"),
                per_s("task-clock"),
                per_s("context-switches"),
                per_s("syscalls:sys_enter_epoll_wait"),
                per_s("syscalls:sys_enter_recvmmsg"),
                per_s("syscalls:sys_enter_sendmsg"),
                per_s("syscalls:sys_enter_write"),
            );
        }
    }
}

fn main() {
    if !bench::is_bench_run() {
        return;
    }
    let secs: u64 = env_or("QUORATE_BENCH_SECONDS", 60);
    let trace_secs: u64 = env_or("QUORATE_BENCH_TRACE_SECONDS", 10);
    let voters: usize = env_or("QUORATE_BENCH_VOTERS", usize::MAX);
    let sizes: Vec<usize> = std::env::var("QUORATE_BENCH_NODES")
        .unwrap_or_else(|_| "5".to_owned())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let ka = match keepalived::unavailable() {
        None => match Keepalived::start() {
            Ok(k) => Some(k),
            Err(e) => {
                println!("(keepalived did not start: {e})");
                keepalived::clean_stale();
                None
            }
        },
        Some(why) => {
            println!("(keepalived skipped: {why})");
            None
        }
    };
    if let Some(k) = &ka {
        // Let VRRP elect its master before any window starts.
        std::thread::sleep(Duration::from_secs(3));
        println!(
            "keepalived master: {:?}",
            k.master().map(|m| k.names()[m].clone())
        );
    }
    println!(
        "{}",
        std::process::Command::new("date")
            .arg("-u")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default()
    );
    for n in sizes {
        measure(n, voters, secs, trace_secs, ka.as_ref());
    }
}
