//! Hostile clients on the HTTP port (issue 13), against real agents on loopback.
//!
//! The agents' `http.allow` is narrowed to 127.0.0.2 (the load balancer stand-in binds
//! its sockets there); the attackers come from elsewhere in 127/8, all of which is
//! loopback on Linux. Two tests, one at a time (each loads the machine):
//!
//! On one agent:
//!
//! 1. a slowloris (connections sending one header byte at a time) and a connection
//!    flood (thousands of idle connections, as fast as they open) from 41 addresses
//!    outside `http.allow`, while the stand-in polls `/primary` every 10 ms: no poll
//!    fails (the poll p99 is printed; the target, 5 ms, is not asserted);
//! 2. the agent's log says so in at most one rate-limited line per kind (per 10 s).
//!
//! On two agents:
//!
//! 3. a balancer flapping `X-Haproxy-Server-State` from inside `http.allow`: the node
//!    takes about one change a second, logs a few lines, and ends on the last state,
//!    which its peer then shows too;
//! 4. the same header from outside `http.allow`: nothing changes, on the node or its
//!    peer, and one line says it was ignored.

// Test code: a failed setup step should stop the test with its error.
#![allow(clippy::unwrap_used)]

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use quorate_tests::primary::current_primary;
use quorate_tests::{Stopwatch, TestCluster, bench, now, wait_until};

/// The only address in the agents' `http.allow`: the load balancer stand-in's.
const BALANCER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
/// How often the stand-in polls, and how long one poll may take before it counts as
/// failed (generous: the machine is loaded; HAProxy's default check timeout is 2 s).
const POLL_EVERY: Duration = Duration::from_millis(10);
const POLL_TIMEOUT: Duration = Duration::from_secs(2);
/// How long the slowloris and the flood last.
const ATTACK: Duration = Duration::from_secs(6);
/// The agents' header timeout (agent/src/http/admission.rs).
const HEADER_TIMEOUT: Duration = Duration::from_secs(2);
/// Connections the flood opens from each attacker (41: about 4000 in all).
const FLOOD_PER_SOURCE: usize = 100;
/// RateLog's window (agent/src/ratelog.rs).
const LOG_WINDOW: Duration = Duration::from_secs(10);
const SETTLE: Duration = Duration::from_secs(30);

/// The attackers' addresses: 127.0.0.1 and 127.0.0.10–49.
fn attackers() -> Vec<Ipv4Addr> {
    std::iter::once(Ipv4Addr::LOCALHOST)
        .chain((10..50).map(|d| Ipv4Addr::new(127, 0, 0, d)))
        .collect()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

async fn connect_from(from: Ipv4Addr, to: SocketAddr) -> io::Result<TcpStream> {
    let sock = TcpSocket::new_v4()?;
    sock.bind(SocketAddr::from((from, 0)))?;
    let s = sock.connect(to).await?;
    s.set_nodelay(true)?;
    Ok(s)
}

/// One request on a fresh connection from `from`, like a balancer's check: the status
/// and the body.
async fn request(
    from: Ipv4Addr,
    to: SocketAddr,
    path: &str,
    headers: &str,
) -> io::Result<(u16, String)> {
    let go = async {
        let mut s = connect_from(from, to).await?;
        s.write_all(
            format!("GET {path} HTTP/1.1\r\nHost: {to}\r\nConnection: close\r\n{headers}\r\n")
                .as_bytes(),
        )
        .await?;
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).await?;
        parse(&raw)
    };
    match tokio::time::timeout(POLL_TIMEOUT, go).await {
        Ok(r) => r,
        Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "no answer in time")),
    }
}

fn parse(raw: &[u8]) -> io::Result<(u16, String)> {
    let text = String::from_utf8_lossy(raw);
    let bad = || io::Error::new(io::ErrorKind::InvalidData, format!("not HTTP: {text:?}"));
    let status = text
        .strip_prefix("HTTP/1.1 ")
        .and_then(|r| r.get(..3))
        .and_then(|c| c.parse().ok())
        .ok_or_else(bad)?;
    let body = text.split_once("\r\n\r\n").ok_or_else(bad)?.1.to_owned();
    Ok((status, body))
}

/// Blocking: one request from `from` (for the test's own reads, e.g. `/cluster`).
fn get_from(
    from: Ipv4Addr,
    to: SocketAddr,
    path: &str,
    headers: &str,
) -> io::Result<(u16, String)> {
    runtime().block_on(request(from, to, path, headers))
}

/// What node `of` says the load balancer said about `about`, read from `of`'s
/// `/cluster` (from the balancer's address, the only one allowed to read it).
fn balancer_seen(c: &TestCluster, of: usize, about: &str) -> Option<(String, String)> {
    let (status, body) = get_from(BALANCER, c.http_addr(of), "/cluster", "").ok()?;
    assert_eq!(status, 200, "/cluster from http.allow: {body}");
    let v: Value = serde_json::from_str(&body).ok()?;
    let b = v["nodes"]
        .as_array()?
        .iter()
        .find(|n| n["node"] == about)?
        .get("balancer")?
        .clone();
    Some((
        b["state"].as_str()?.to_owned(),
        b["balancer"].as_str().unwrap_or("-").to_owned(),
    ))
}

/// One poll of the stand-in: when it was sent and how long it took.
type Poll = (std::time::Instant, Duration);

/// The stand-in: polls `path` from [`BALANCER`] every [`POLL_EVERY`] until `stop`;
/// returns every poll and the failures.
fn stand_in(
    to: SocketAddr,
    path: &'static str,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<(Vec<Poll>, Vec<String>)> {
    std::thread::spawn(move || {
        runtime().block_on(async move {
            let (mut polls, mut failures) = (Vec::new(), Vec::new());
            while !stop.load(Ordering::Relaxed) {
                let sent = now();
                let clock = Stopwatch::start();
                match request(BALANCER, to, path, "").await {
                    Ok((200 | 503, _)) => {}
                    Ok((status, body)) => failures.push(format!("{status}: {body}")),
                    Err(e) => failures.push(format!("after {:?}: {e}", clock.elapsed())),
                }
                polls.push((sent, clock.elapsed()));
                tokio::time::sleep(POLL_EVERY).await;
            }
            (polls, failures)
        })
    })
}

/// Raises this process's open-file soft limit to its hard one: the attackers hold
/// thousands of sockets.
#[allow(unsafe_code)]
fn raise_fd_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit read or write only the struct passed, which lives
    // in this frame.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

/// Connections sending `GET /health HTTP/1.1\r\n…` one byte every 200 ms, `per_source`
/// from each attacker, each reconnecting once closed, until `until`.
async fn slowloris(to: SocketAddr, per_source: usize, until: tokio::time::Instant) -> usize {
    let mut tasks = tokio::task::JoinSet::new();
    for from in attackers() {
        for _ in 0..per_source {
            tasks.spawn(async move {
                let mut opened = 0;
                let line =
                    b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
                while tokio::time::Instant::now() < until {
                    let Ok(Ok(mut s)) =
                        tokio::time::timeout(Duration::from_secs(2), connect_from(from, to)).await
                    else {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    };
                    opened += 1;
                    for b in line.iter().cycle() {
                        if tokio::time::Instant::now() >= until
                            || s.write_all(std::slice::from_ref(b)).await.is_err()
                        {
                            break;
                        }
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                opened
            });
        }
    }
    tasks.join_all().await.into_iter().sum()
}

/// Idle connections from every attacker, `per_source` from each, opened as fast as they
/// open (`tasks` at a time per address) and held until `until` (those refused are reset
/// by the agent). Returns how many opened.
async fn flood(
    to: SocketAddr,
    per_source: usize,
    tasks: usize,
    until: tokio::time::Instant,
) -> usize {
    let mut set = tokio::task::JoinSet::new();
    for from in attackers() {
        for _ in 0..tasks {
            set.spawn(async move {
                let mut held = Vec::new();
                for _ in 0..per_source / tasks {
                    // A refused connection is reset at once: its connect fails, or it
                    // opens and is reset a moment later.
                    if let Ok(Ok(s)) = tokio::time::timeout_at(until, connect_from(from, to)).await
                    {
                        held.push(s);
                    }
                }
                let opened = held.len();
                tokio::time::sleep_until(until).await;
                opened
            });
        }
    }
    set.join_all().await.into_iter().sum()
}

/// The kernel's count of connections dropped because a listen queue was full
/// (`TcpExt: ListenOverflows` in /proc/net/netstat), if it can be read.
fn listen_overflows() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/net/netstat").ok()?;
    let mut lines = text.lines().filter(|l| l.starts_with("TcpExt:"));
    let (names, values) = (lines.next()?, lines.next()?);
    let i = names
        .split_whitespace()
        .position(|n| n == "ListenOverflows")?;
    values.split_whitespace().nth(i)?.parse().ok()
}

/// CPU time (user + system) of each of `pid`'s threads whose name starts with `prefix`.
fn thread_cpu(pid: u32, prefix: &str) -> Vec<(String, Duration)> {
    let tick = 100.0; // USER_HZ on Linux
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    let mut out: Vec<(String, Duration)> = tasks
        .filter_map(Result::ok)
        .filter_map(|t| {
            let stat = std::fs::read_to_string(t.path().join("stat")).ok()?;
            let (name, rest) = stat.split_once(" (")?.1.rsplit_once(") ")?;
            let f: Vec<&str> = rest.split_whitespace().collect();
            let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
            name.starts_with(prefix)
                .then(|| (name.to_owned(), Duration::from_secs_f64(ticks / tick)))
        })
        .collect();
    out.sort();
    out
}

/// The two tests each load the machine: one at a time, so the stand-in's figures are
/// the attack's, not the other test's.
#[allow(clippy::disallowed_types)] // a lock between tests, not state shared in the agent
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn count(log: &str, words: &[&str]) -> usize {
    log.lines()
        .filter(|l| words.iter().all(|w| l.contains(w)))
        .count()
}

/// Agents whose `http.allow` is [`BALANCER`] alone, with a primary.
fn cluster(n: usize) -> TestCluster {
    let c = TestCluster::builder(n)
        .extra_all(&format!("allow = [\"{BALANCER}/32\"]\n"))
        .start();
    let addrs: Vec<SocketAddr> = (0..n).map(|i| c.http_addr(i)).collect();
    assert!(
        wait_until(SETTLE, || current_primary(&addrs).is_some()),
        "no primary"
    );
    c
}

#[test]
fn a_slowloris_and_a_flood_from_outside_http_allow_do_not_starve_the_balancer() {
    let _one_at_a_time = serial();
    let c = cluster(1);
    let target = c.http_addr(0);

    // 1. Slowloris and flood from outside http.allow; the stand-in polls from inside.
    raise_fd_limit();
    let stop = Arc::new(AtomicBool::new(false));
    let poller = stand_in(target, "/primary", stop.clone());
    std::thread::sleep(Duration::from_millis(500));
    let attack_start = now();
    let overflows = listen_overflows();
    // Each attack on a thread (and runtime) of its own, as two attackers would be.
    let flooder = std::thread::spawn(move || {
        let until = tokio::time::Instant::now() + ATTACK;
        runtime().block_on(flood(target, FLOOD_PER_SOURCE, 4, until))
    });
    let slow = runtime().block_on(slowloris(target, 40, tokio::time::Instant::now() + ATTACK));
    let opened = flooder.join().unwrap();
    let overflows = overflows
        .zip(listen_overflows())
        .map_or("?".to_owned(), |(a, b)| (b - a).to_string());
    let attack_end = now();
    let attack_took = attack_end - attack_start;
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    let (polls, failures) = poller.join().unwrap();
    // The figures are those of the polls sent during the attack.
    let mut times: Vec<Duration> = polls
        .iter()
        .filter(|(sent, _)| (attack_start..attack_end).contains(sent))
        .map(|(_, took)| *took)
        .collect();
    times.sort();
    let mut quiet: Vec<Duration> = polls
        .iter()
        .filter(|(sent, _)| !(attack_start..attack_end).contains(sent))
        .map(|(_, took)| *took)
        .collect();
    quiet.sort();
    println!(
        "hostile_http: from {} addresses in {attack_took:?}: {slow} slowloris connections, \
         and a flood of {} idle connections ({opened} connected; those beyond the agent's \
         share were reset); {overflows} connections dropped by a full listen queue (any on \
         this machine); the stand-in polled /primary {} times during the attack: p50 {:?}, \
         p99 {:?} (target 5 ms), max {:?}; {} times before and after it: p50 {:?}, p99 {:?}; \
         {} polls failed",
        attackers().len(),
        attackers().len() * FLOOD_PER_SOURCE,
        times.len(),
        bench::pct(&times, 0.5),
        bench::pct(&times, 0.99),
        times.last().copied().unwrap_or_default(),
        quiet.len(),
        bench::pct(&quiet, 0.5),
        bench::pct(&quiet, 0.99),
        failures.len()
    );
    println!(
        "hostile_http: the agent's HTTP threads' CPU time: {:?}",
        thread_cpu(c.pid(0), "quorate-http")
    );
    assert!(
        failures.is_empty(),
        "{} of {} polls from http.allow failed during the attack, e.g. {:?}",
        failures.len(),
        polls.len(),
        &failures[..failures.len().min(5)]
    );
    assert!(
        times.len() > 100,
        "the stand-in hardly polled: {}",
        times.len()
    );
    // The agent still answers anyone once the attack is over.
    assert!(wait_until(SETTLE, || {
        get_from(Ipv4Addr::LOCALHOST, target, "/live", "").is_ok_and(|(s, _)| s == 200)
    }));

    // 2. One rate-limited line per kind and window (the slow connections are closed up
    // to a header timeout after the attack).
    std::thread::sleep(HEADER_TIMEOUT + Duration::from_secs(1));
    let span = now() - attack_start;
    let most = 1 + (span.as_secs() / LOG_WINDOW.as_secs()) as usize;
    let log = c.log(0);
    for (kind, words) in [
        (
            "per-source cap",
            &["refused an HTTP connection", "already holds"][..],
        ),
        (
            "slots taken",
            &["refused an HTTP connection", "connections open ("][..],
        ),
        (
            "slow clients",
            &["closed an HTTP connection", "no complete request"][..],
        ),
    ] {
        let n = count(&log, words);
        println!("hostile_http: {n} log line(s) for {kind}");
        assert!(
            (1..=most).contains(&n),
            "{n} lines for {kind} (want 1 to {most}) in\n{log}"
        );
    }
}

#[test]
fn balancer_states_are_paced_from_http_allow_and_ignored_from_elsewhere() {
    let _one_at_a_time = serial();
    let c = cluster(2);
    let target = c.http_addr(0);

    // 3. A balancer in http.allow flapping its state as fast as it can.
    assert!(
        get_from(
            BALANCER,
            target,
            "/health",
            "X-Haproxy-Server-State: UP; node=lb1\r\n"
        )
        .is_ok()
    );
    assert!(
        wait_until(SETTLE, || balancer_seen(&c, 0, "n1")
            .is_some_and(|(s, _)| s == "UP")),
        "the balancer's first state is not shown: {:?}",
        balancer_seen(&c, 0, "n1")
    );
    let said_before = count(&c.log(0), &["the load balancer says"]);
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = {
        let stop = stop.clone();
        let to = target;
        std::thread::spawn(move || {
            // Every state /cluster shows, polled every 50 ms.
            let mut seen: Vec<String> = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                if let Ok((200, body)) = get_from(BALANCER, to, "/cluster", "") {
                    let v: Value = serde_json::from_str(&body).unwrap_or_default();
                    let state = v["nodes"]
                        .as_array()
                        .and_then(|ns| ns.iter().find(|n| n["node"] == "n1"))
                        .map(|n| n["balancer"]["state"].to_string())
                        .unwrap_or_default();
                    if seen.last() != Some(&state) {
                        seen.push(state);
                    }
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            seen
        })
    };
    let flap = Duration::from_secs(5);
    let sent = runtime().block_on(async {
        let until = tokio::time::Instant::now() + flap;
        let mut tasks = tokio::task::JoinSet::new();
        for k in 0..4 {
            tasks.spawn(async move {
                let mut sent = 0usize;
                while tokio::time::Instant::now() < until {
                    let word = if (sent + k).is_multiple_of(2) {
                        "UP"
                    } else {
                        "DOWN 1/2"
                    };
                    let h = format!("X-Haproxy-Server-State: {word}; node=lb1\r\n");
                    if request(BALANCER, target, "/health", &h).await.is_ok() {
                        sent += 1;
                    }
                }
                sent
            });
        }
        tasks.join_all().await.into_iter().sum::<usize>()
    });
    stop.store(true, Ordering::Relaxed);
    let seen = watcher.join().unwrap();
    // The last word, once the window is over: it must not be lost.
    std::thread::sleep(Duration::from_millis(1200));
    let last = get_from(
        BALANCER,
        target,
        "/health",
        "X-Haproxy-Server-State: NOLB; node=lb-final\r\n",
    );
    assert!(last.is_ok(), "{last:?}");
    println!(
        "hostile_http: {sent} flapping balancer states sent in {flap:?}; /cluster showed {} \
         changes",
        seen.len().saturating_sub(1)
    );
    assert!(sent > 100, "only {sent} states sent");
    // About one change a second (the first may be taken at once, one more per second).
    assert!(
        seen.len() <= flap.as_secs() as usize + 3,
        "{} changes shown in {flap:?}: {seen:?}",
        seen.len()
    );
    let final_state = ("NOLB".to_owned(), "lb-final".to_owned());
    for i in 0..2 {
        assert!(
            wait_until(SETTLE, || balancer_seen(&c, i, "n1").as_ref()
                == Some(&final_state)),
            "{} does not show the balancer's last state: {:?}",
            c.id(i),
            balancer_seen(&c, i, "n1")
        );
    }
    // Lines: at most one per LOG_WINDOW, with a summary at the end of the window.
    std::thread::sleep(LOG_WINDOW);
    let said = count(&c.log(0), &["the load balancer says"]) - said_before;
    println!("hostile_http: {said} log line(s) about the balancer's state");
    assert!(
        (1..=3).contains(&said),
        "{said} lines about the balancer's state in\n{}",
        c.log(0)
    );

    // 4. The same header from outside http.allow: ignored, and said once.
    for _ in 0..50 {
        let r = get_from(
            Ipv4Addr::LOCALHOST,
            target,
            "/health",
            "X-Haproxy-Server-State: MAINT; node=evil-lb\r\n",
        );
        assert!(r.is_ok(), "{r:?}");
    }
    std::thread::sleep(Duration::from_secs(3));
    for i in 0..2 {
        assert_eq!(
            balancer_seen(&c, i, "n1").as_ref(),
            Some(&final_state),
            "{} took a spoofed balancer state",
            c.id(i)
        );
    }
    let ignored = count(
        &c.log(0),
        &["ignored X-Haproxy-Server-State from 127.0.0.1"],
    );
    assert_eq!(ignored, 1, "{}", c.log(0));
}
