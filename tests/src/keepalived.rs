//! keepalived as a baseline: three real keepalived instances (the Debian package), each
//! in a network namespace of its own (`qka1`…`qka3`, veth pairs on a bridge `qkabr0`,
//! addresses 10.213.0.1–3), VRRPv3 with unicast peers, `advert_int 0.1`, one virtual
//! address. The idle benchmark measures them beside the agents.
//!
//! It owns those namespaces, that bridge and those processes, and removes them on drop
//! and, left over from a run that was killed, before it builds them again. It never
//! touches any other namespace, interface or process (so one run at a time per machine:
//! a second run ends the first one's instances), and it needs root: [`available`]
//! says whether it can run here, so a bench can skip with a note.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const INSTANCES: usize = 3;
const BRIDGE: &str = "qkabr0";
const VIP: &str = "10.213.0.100";
/// Where pid files and configs go; fixed, so a stale run can be found and ended.
const DIR: &str = "/tmp/quorate-keepalived";

/// Why keepalived cannot run here, or `None` if it can (root, `ip`, `keepalived`).
pub fn unavailable() -> Option<String> {
    if !Path::new("/usr/sbin/keepalived").exists() {
        return Some("keepalived is not installed (apt-get install keepalived)".to_owned());
    }
    let ok = Command::new("ip")
        .args(["netns", "list"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    // SAFETY-free check of our effective uid through /proc.
    let root = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| crate::procstat::status_field(&s, "Uid:"))
        == Some(0);
    match (ok, root) {
        (true, true) => None,
        _ => Some("needs root and iproute2 (network namespaces)".to_owned()),
    }
}

/// Whether keepalived can run here.
pub fn available() -> bool {
    unavailable().is_none()
}

/// Three running instances; dropping it ends them and removes the namespaces.
pub struct Keepalived {
    children: Vec<Child>,
}

fn ns(i: usize) -> String {
    format!("qka{}", i + 1)
}

fn addr(i: usize) -> String {
    format!("10.213.0.{}", i + 1)
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Ends keepalived processes of an earlier run (from their pid files) and removes its
/// namespaces and bridge. Errors are ignored: most of it is usually not there.
pub fn clean_stale() {
    if let Ok(dir) = std::fs::read_dir(DIR) {
        for e in dir.flatten() {
            let path = e.path();
            if path.extension().is_some_and(|x| x == "pid")
                && let Some(pid) = std::fs::read_to_string(&path)
                    .ok()
                    .and_then(|s| s.trim().parse::<u32>().ok())
                && is_keepalived(pid)
            {
                let _ = Command::new("kill").arg(pid.to_string()).status();
            }
        }
    }
    std::thread::sleep(Duration::from_millis(200));
    for i in 0..INSTANCES {
        let _ = ip(&["netns", "delete", &ns(i)]);
        let _ = ip(&["link", "delete", &format!("{}h", ns(i))]);
    }
    let _ = ip(&["link", "delete", BRIDGE]);
    let _ = std::fs::remove_dir_all(DIR);
}

fn is_keepalived(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "keepalived")
}

fn config(i: usize) -> String {
    let peers: String = (0..INSTANCES)
        .filter(|j| *j != i)
        .map(|j| format!("    {}\n", addr(j)))
        .collect();
    format!(
        "global_defs {{\n  router_id {ns}\n  vrrp_version 3\n  script_user root\n}}\n\
         vrrp_instance VI_1 {{\n  state BACKUP\n  interface eth0\n  virtual_router_id 51\n  \
         priority {prio}\n  advert_int 0.1\n  unicast_src_ip {src}\n  unicast_peer {{\n{peers}  }}\n  \
         virtual_ipaddress {{\n    {VIP}/24\n  }}\n}}\n",
        ns = ns(i),
        prio = 100 + i,
        src = addr(i),
    )
}

impl Keepalived {
    /// Builds the namespaces and starts the three instances (the highest priority,
    /// `qka3`, becomes master). Cleans a stale run first.
    pub fn start() -> Result<Self, String> {
        clean_stale();
        std::fs::create_dir_all(DIR).map_err(|e| format!("{DIR}: {e}"))?;
        ip(&["link", "add", BRIDGE, "type", "bridge"])?;
        ip(&["link", "set", BRIDGE, "up"])?;
        let mut k = Keepalived {
            children: Vec::new(),
        };
        for i in 0..INSTANCES {
            let n = ns(i);
            let host = format!("{n}h");
            ip(&["netns", "add", &n])?;
            ip(&[
                "link", "add", &host, "type", "veth", "peer", "name", "eth0", "netns", &n,
            ])?;
            ip(&["link", "set", &host, "master", BRIDGE, "up"])?;
            ip(&[
                "-n",
                &n,
                "addr",
                "add",
                &format!("{}/24", addr(i)),
                "dev",
                "eth0",
            ])?;
            ip(&["-n", &n, "link", "set", "eth0", "up"])?;
            ip(&["-n", &n, "link", "set", "lo", "up"])?;
            let conf = PathBuf::from(DIR).join(format!("{n}.conf"));
            std::fs::write(&conf, config(i)).map_err(|e| format!("{}: {e}", conf.display()))?;
            let log = std::fs::File::create(PathBuf::from(DIR).join(format!("{n}.log")))
                .map_err(|e| format!("{DIR}: {e}"))?;
            let child = Command::new("ip")
                .args([
                    "netns",
                    "exec",
                    &n,
                    "/usr/sbin/keepalived",
                    "-n",
                    "-l",
                    "-P",
                    "-f",
                ])
                .arg(&conf)
                .arg("-p")
                .arg(PathBuf::from(DIR).join(format!("{n}.pid")))
                .arg("-r")
                .arg(PathBuf::from(DIR).join(format!("{n}-vrrp.pid")))
                .stdout(Stdio::from(
                    log.try_clone().map_err(|e| format!("{DIR}: {e}"))?,
                ))
                .stderr(Stdio::from(log))
                .spawn()
                .map_err(|e| format!("keepalived: {e}"))?;
            k.children.push(child);
        }
        Ok(k)
    }

    /// The three instances' names (`qka1`…).
    pub fn names(&self) -> Vec<String> {
        (0..INSTANCES).map(ns).collect()
    }

    /// Every process of instance `i`: the parent (whose pid `ip netns exec` became) and
    /// its VRRP child.
    pub fn pids(&self, i: usize) -> Vec<u32> {
        let Some(child) = self.children.get(i) else {
            return Vec::new();
        };
        let parent = child.id();
        let mut pids = vec![parent];
        pids.extend(crate::procstat::children(parent));
        pids
    }

    /// The VRRP process of instance `i` (the one that sends the adverts), if it runs.
    pub fn vrrp_pid(&self, i: usize) -> Option<u32> {
        std::fs::read_to_string(PathBuf::from(DIR).join(format!("{}-vrrp.pid", ns(i))))
            .ok()
            .and_then(|s| s.trim().parse().ok())
    }

    /// Which instance holds the virtual address now.
    pub fn master(&self) -> Option<usize> {
        (0..INSTANCES).find(|i| {
            Command::new("ip")
                .args(["-n", &ns(*i), "-o", "addr", "show", "dev", "eth0"])
                .output()
                .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains(VIP))
        })
    }

    /// Packets (received, sent) on instance `i`'s interface so far, from
    /// `/proc/PID/net/dev` inside its namespace.
    pub fn packets(&self, i: usize) -> Option<(u64, u64)> {
        let pid = self.children.get(i)?.id();
        let dev = std::fs::read_to_string(format!("/proc/{pid}/net/dev")).ok()?;
        let line = dev.lines().find(|l| l.trim_start().starts_with("eth0:"))?;
        let f: Vec<u64> = line
            .split_once(':')?
            .1
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        Some((*f.get(1)?, *f.get(9)?))
    }
}

impl Drop for Keepalived {
    fn drop(&mut self) {
        for c in &mut self.children {
            crate::cluster::send_signal(c.id(), libc::SIGTERM);
        }
        for c in &mut self.children {
            let _ = c.wait();
        }
        clean_stale();
    }
}
