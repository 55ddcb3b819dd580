//! Real HAProxy (Debian's package) in front of a [`TestCluster`], as the operator guide
//! recommends: `option httpchk GET /primary` for the primary-only backend, `agent-check`
//! weights for a round-robin tier. Only the tier sends `http-check send-state`: the agent
//! keeps the last state it was told, and the primary backend (DOWN on every secondary)
//! would contradict the tier at every check.
//!
//! The "application" behind HAProxy is each agent's own HTTP port: `GET /live` answers
//! on any node and names it in `X-Quorate-Node`, so a caller sees where HAProxy routed.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::cluster::free_port;
use crate::{TestCluster, http_request, wait_until};

const SETTLE: Duration = Duration::from_secs(20);

pub struct Haproxy {
    /// The `primary` frontend (`option httpchk GET /primary`).
    child: Child,
    pub front: SocketAddr,
    /// The admin stats socket.
    pub stats: PathBuf,
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Haproxy {
    /// Starts HAProxy with the recommended config (docs/operator-guide.md) in front of
    /// `c`'s agents: backend `primary` checks `GET /primary`; backend `tier` balances
    /// round-robin over every node weighted by the agent-check ports `agents`. `None`
    /// when haproxy is not installed.
    pub fn start(dir: &Path, c: &TestCluster, agents: &[u16]) -> Option<Haproxy> {
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
             backend primary\n  option httpchk GET /primary\n{servers}\n\
             frontend tier\n  bind {tier}\n  default_backend tier\n\n\
             backend tier\n  balance roundrobin\n  option httpchk GET /health\n  http-check disable-on-404\n  http-check send-state\n{tier_servers}",
            stats = stats.display(),
        );
        let path = dir.join("haproxy.cfg");
        std::fs::write(&path, cfg).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let check = Command::new("haproxy")
            .arg("-c")
            .arg("-f")
            .arg(&path)
            .output()
            .unwrap_or_else(|e| panic!("cannot run haproxy: {e}"));
        assert!(check.status.success(), "haproxy -c: {check:?}");
        let child = Command::new("haproxy")
            .arg("-db")
            .arg("-f")
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run haproxy: {e}"));
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
    pub fn routed(&self) -> Option<String> {
        let r = http_request(self.front, "GET", "/live").ok()?;
        (r.status == 200).then(|| r.header("X-Quorate-Node").map(str::to_owned))?
    }

    /// One command on the admin socket; its whole answer.
    pub fn command(&self, cmd: &str) -> String {
        let mut s = UnixStream::connect(&self.stats)
            .unwrap_or_else(|e| panic!("{}: {e}", self.stats.display()));
        s.write_all(format!("{cmd}\n").as_bytes())
            .unwrap_or_else(|e| panic!("{}: {e}", self.stats.display()));
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out
    }

    /// `server → (status, current weight)` for backend `tier`.
    pub fn tier(&self) -> Vec<(String, String, u32)> {
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
