//! [`Net`]: "machines" made of network namespaces on one bridge, for tests that need real
//! addresses (one per node) instead of ports on loopback.
//!
//! Owns: one bridge `PREFIX<pid>b` in the root namespace, holding `10.O.S.254/24` so the
//! test itself can reach every node, and per node `k` (1-based) a namespace
//! `PREFIX<pid>n<k>` whose `eth0` (a veth on the bridge) holds `10.O.S.k/24`; the nftables
//! table `inet PREFIX` inside each node's namespace, when a caller installs one. All of
//! it goes on drop, and [`Net::new`] first removes what a dead test process of the same
//! prefix left behind (a crash, a SIGKILL).
//!
//! It must never touch a namespace, link or rule not named with its prefix, and never
//! install a rule in the root namespace: every fault lives inside a node's namespace, so
//! labs of other tests (and other engineers' runs) never see each other's faults.

use std::process::Command;

/// Runs a command; its stderr on failure.
pub fn run(args: &[&str]) -> Result<String, String> {
    let (program, rest) = args.split_first().ok_or("an empty command")?;
    let out = Command::new(program)
        .args(rest)
        .output()
        .map_err(|e| format!("{args:?}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Whether this process runs as root (namespaces, bridges, nftables, cgroups).
#[allow(unsafe_code)]
pub fn is_root() -> bool {
    // SAFETY: geteuid(2) has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

fn pid_alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// The pid in a lab name `PREFIX<pid><rest>`, if it is one.
fn owner(name: &str, prefix: &str) -> Option<u32> {
    let rest = name.strip_prefix(prefix)?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// Nodes in namespaces on one bridge; removed on drop.
#[derive(Debug)]
pub struct Net {
    prefix: String,
    tag: String,
    octet: u8,
    subnet: u8,
    nodes: usize,
}

impl Net {
    /// `nodes` namespaces on a fresh bridge, named `PREFIX<pid>…`, on `10.OCTET.S.0/24`
    /// (S from the pid, so two test processes rarely share a subnet). Removes the
    /// leftovers of dead processes with the same prefix first.
    pub fn new(prefix: &str, octet: u8, nodes: usize) -> Result<Net, String> {
        assert!((1..=200).contains(&nodes), "1 to 200 nodes");
        Self::clean_stale(prefix);
        let pid = std::process::id();
        let net = Net {
            prefix: prefix.to_owned(),
            tag: format!("{prefix}{pid}"),
            octet,
            subnet: (pid % 200) as u8 + 20,
            nodes,
        };
        // An earlier lab of this process may still be going: the kernel dismantles a
        // deleted namespace's links in the background.
        net.remove_links();
        // From here on, a failed step leaves parts that `drop` removes.
        let br = net.bridge();
        run(&["ip", "link", "add", &br, "type", "bridge"])?;
        run(&[
            "ip",
            "addr",
            "add",
            &format!("{}/24", net.ip(254)),
            "dev",
            &br,
        ])?;
        run(&["ip", "link", "set", &br, "up"])?;
        for k in 1..=nodes {
            let ns = net.netns(k);
            let veth = format!("{}v{k}", net.tag);
            run(&["ip", "netns", "add", &ns])?;
            run(&[
                "ip", "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &ns,
            ])?;
            run(&["ip", "link", "set", &veth, "master", &br, "up"])?;
            run(&[
                "ip",
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{}/24", net.ip(k as u8)),
                "dev",
                "eth0",
            ])?;
            run(&["ip", "-n", &ns, "link", "set", "eth0", "up"])?;
            run(&["ip", "-n", &ns, "link", "set", "lo", "up"])?;
        }
        Ok(net)
    }

    /// Removes namespaces and bridges named `PREFIX<pid>…` whose process is gone.
    pub fn clean_stale(prefix: &str) {
        if let Ok(list) = run(&["ip", "netns", "list"]) {
            for name in list.lines().filter_map(|l| l.split_whitespace().next()) {
                if owner(name, prefix).is_some_and(|p| !pid_alive(p)) {
                    let _ = run(&["ip", "netns", "del", name]);
                }
            }
        }
        if let Ok(list) = run(&["ip", "-o", "link", "show", "type", "bridge"]) {
            for name in list.lines().filter_map(|l| l.split(": ").nth(1)) {
                if owner(name, prefix).is_some_and(|p| !pid_alive(p)) {
                    let _ = run(&["ip", "link", "del", name]);
                }
            }
        }
    }

    pub fn nodes(&self) -> usize {
        self.nodes
    }

    /// The prefix every name of this lab starts with.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The unique tag of this lab (`PREFIX<pid>`).
    pub fn tag(&self) -> &str {
        &self.tag
    }

    pub fn bridge(&self) -> String {
        format!("{}b", self.tag)
    }

    /// Node `k`'s namespace (1-based).
    pub fn netns(&self, k: usize) -> String {
        format!("{}n{k}", self.tag)
    }

    /// `10.O.S.host`: node `k` is host `k`, the test's own end of the bridge is 254, and
    /// host 0 names the subnet.
    pub fn ip(&self, host: u8) -> String {
        format!("10.{}.{}.{host}", self.octet, self.subnet)
    }

    /// The command prefix that runs a program in node `k`'s namespace (`ip netns exec`
    /// execs it in place: the program keeps the pid the caller spawned).
    pub fn exec_prefix(&self, k: usize) -> Vec<String> {
        ["ip", "netns", "exec", &self.netns(k)]
            .iter()
            .map(|s| (*s).to_owned())
            .collect()
    }

    /// Runs an nftables script inside node `k`'s namespace.
    pub fn nft(&self, k: usize, script: &str) -> Result<(), String> {
        let ns = self.netns(k);
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &ns, "nft"]);
        crate::netcut::nft_with(cmd, &format!("nft in {ns}"), script)
    }
}

impl Net {
    /// Deletes the host ends of the veths (which takes their peers with them at once,
    /// where deleting a namespace leaves them to the kernel's background cleanup) and the
    /// bridge, if they exist.
    fn remove_links(&self) {
        for k in 1..=self.nodes {
            let veth = format!("{}v{k}", self.tag);
            if run(&["ip", "link", "show", &veth]).is_ok() {
                let _ = run(&["ip", "link", "del", &veth]);
            }
        }
        if run(&["ip", "link", "show", &self.bridge()]).is_ok() {
            let _ = run(&["ip", "link", "del", &self.bridge()]);
        }
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        self.remove_links();
        for k in 1..=self.nodes {
            let _ = run(&["ip", "netns", "del", &self.netns(k)]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_are_read_from_names_with_the_prefix_only() {
        assert_eq!(owner("qdl1234n2", "qdl"), Some(1234));
        assert_eq!(owner("qdl1234b", "qdl"), Some(1234));
        assert_eq!(owner("qoc1234n2", "qdl"), None);
        assert_eq!(owner("qdlxn2", "qdl"), None);
    }
}
