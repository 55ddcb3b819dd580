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
    child: Child,
    /// The `app_primary` frontend (`option httpchk GET /primary`).
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
    /// Starts HAProxy with the recipe (docs/recipes/haproxy/haproxy.cfg) in front of
    /// `c`'s agents: backend `app_primary` checks `GET /primary`; backend `app_tier`
    /// balances round-robin over every node weighted by the agent-check ports `agents`.
    /// `None` when haproxy is not installed.
    pub fn start(dir: &Path, c: &TestCluster, agents: &[u16]) -> Option<Haproxy> {
        if Command::new("haproxy").arg("-v").output().is_err() {
            return None;
        }
        let front = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let tier = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let stats = dir.join("haproxy.sock");
        let cfg = recipe(&stats, front, tier, |node| {
            let i = (0..c.members()).find(|&i| c.id(i) == node)?;
            Some((c.http_addr(i), *agents.get(i)?))
        });
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

    /// Which node HAProxy's `app_primary` frontend routes a request to (`None`: no server).
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

    /// `server → (status, current weight)` for backend `app_tier`.
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
            .filter(|f| {
                f.len() > w && f[px] == "app_tier" && f[sv] != "BACKEND" && f[sv] != "FRONTEND"
            })
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

/// The recipe as the operator guide shows it.
const RECIPE: &str = include_str!("../../docs/recipes/haproxy/haproxy.cfg");

/// The recipe with only addresses changed: the stats socket, the two frontends' binds,
/// and each `server NODE ADDR … port 7701 … agent-port 7702` line pointed at `node`'s
/// agent (whose `GET /live` stands in for the application) and agent-check port. Every
/// other line is the recipe's own. Panics on a server line `node` cannot place.
pub fn recipe(
    stats: &Path,
    front: SocketAddr,
    tier: SocketAddr,
    node: impl Fn(&str) -> Option<(SocketAddr, u16)>,
) -> String {
    let mut out = String::new();
    for line in RECIPE.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        let line = match words.as_slice() {
            ["stats", "socket", _, rest @ ..] => {
                format!("    stats socket {} {}", stats.display(), rest.join(" "))
            }
            ["bind", ":8080"] => format!("    bind {front}"),
            ["bind", ":8081"] => format!("    bind {tier}"),
            ["server", name, _addr, rest @ ..] => {
                let (http, agent) =
                    node(name).unwrap_or_else(|| panic!("recipe server {name}: no such node"));
                let rest: Vec<String> = rest
                    .iter()
                    .map(|w| match *w {
                        "7701" => http.port().to_string(),
                        "7702" => agent.to_string(),
                        w => w.to_owned(),
                    })
                    .collect();
                format!("    server {name} {http} {}", rest.join(" "))
            }
            _ => line.to_owned(),
        };
        out.push_str(&line);
        out.push('\n');
    }
    out
}
