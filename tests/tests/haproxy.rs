//! Real HAProxy (Debian's package) in front of three real agents (issue 4 acceptance):
//! `option httpchk GET /primary` routes to the primary and follows a failover; the
//! agent-check port weights a round-robin tier by load; `http-check send-state` shows
//! up in `/cluster` as what the balancer last said about each node.
//!
//! The "application" behind HAProxy is each agent's own HTTP port: `GET /live` answers
//! on any node and names it in `X-Quorate-Node`, so the test sees where HAProxy routed.

// Test code: a failed setup step should stop the test with its error.
#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use quorate_tests::cluster::free_port;
use quorate_tests::primary::current_primary;
use quorate_tests::{Stopwatch, TestCluster, http_request, wait_until};

const SETTLE: Duration = Duration::from_secs(20);

struct Haproxy {
    child: Child,
    front: SocketAddr,
    stats: PathBuf,
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Haproxy {
    fn start(dir: &Path, c: &TestCluster, agents: &[u16]) -> Option<Haproxy> {
        if Command::new("haproxy").arg("-v").output().is_err() {
            return None;
        }
        let front = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let tier = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let stats = dir.join("haproxy.sock");
        let mut servers = String::new();
        let mut tier_servers = String::new();
        for (i, agent) in agents.iter().enumerate() {
            let http = c.http_addr(i);
            servers.push_str(&format!("  server {} {http} check\n", c.id(i)));
            tier_servers.push_str(&format!(
                "  server {} {http} weight 100 check agent-check agent-addr 127.0.0.1 agent-port {} agent-inter 300ms\n",
                c.id(i),
                agent
            ));
        }
        let cfg = format!(
            "global\n  maxconn 512\n  stats socket {stats} mode 600 level admin\n\n\
             defaults\n  mode http\n  timeout connect 250ms\n  timeout client 5s\n  timeout server 5s\n  \
             retries 1\n  option redispatch\n  \
             default-server inter 100ms fall 2 rise 1 on-marked-down shutdown-sessions\n\n\
             frontend primary\n  bind {front}\n  default_backend primary\n\n\
             backend primary\n  option httpchk GET /primary\n  http-check send-state\n{servers}\n\
             frontend tier\n  bind {tier}\n  default_backend tier\n\n\
             backend tier\n  balance roundrobin\n  option httpchk GET /health\n  http-check send-state\n{tier_servers}",
            stats = stats.display(),
        );
        let path = dir.join("haproxy.cfg");
        std::fs::write(&path, cfg).unwrap();
        let check = Command::new("haproxy")
            .arg("-c")
            .arg("-f")
            .arg(&path)
            .output()
            .unwrap();
        assert!(check.status.success(), "haproxy -c: {check:?}");
        let child = Command::new("haproxy")
            .arg("-db")
            .arg("-f")
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let h = Haproxy {
            child,
            front,
            stats,
        };
        assert!(
            wait_until(SETTLE, || h.stats.exists()),
            "haproxy did not start"
        );
        Some(h)
    }

    /// Which node HAProxy's `primary` frontend routes a request to (`None`: no server).
    fn routed(&self) -> Option<String> {
        let r = http_request(self.front, "GET", "/live").ok()?;
        (r.status == 200).then(|| r.header("X-Quorate-Node").map(str::to_owned))?
    }

    fn command(&self, cmd: &str) -> String {
        let mut s = UnixStream::connect(&self.stats).unwrap();
        s.write_all(format!("{cmd}\n").as_bytes()).unwrap();
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out
    }

    /// `server → (status, current weight)` for backend `tier`.
    fn tier(&self) -> Vec<(String, String, u32)> {
        let csv = self.command("show stat");
        let header: Vec<&str> = csv
            .lines()
            .next()
            .unwrap_or("")
            .trim_start_matches("# ")
            .split(',')
            .collect();
        let col = |name: &str| header.iter().position(|h| *h == name);
        let (Some(px), Some(sv), Some(st), Some(w)) =
            (col("pxname"), col("svname"), col("status"), col("weight"))
        else {
            return Vec::new();
        };
        csv.lines()
            .skip(1)
            .map(|l| l.split(',').collect::<Vec<_>>())
            .filter(|f| f.len() > w && f[px] == "tier" && f[sv] != "BACKEND" && f[sv] != "FRONTEND")
            .map(|f| {
                (
                    f[sv].to_owned(),
                    f[st].to_owned(),
                    f[w].parse().unwrap_or(0),
                )
            })
            .collect()
    }
}

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
