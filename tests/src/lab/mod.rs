//! The duress lab: real `quorate-agent` processes, each in a network namespace of its
//! own on one bridge, and verbs that hurt the links, the CPU or the process of a node.
//!
//! - [`Lab`]: N nodes (`n1`…, node `i` is `n{i+1}`) at `10.214.S.k`, QUIC on 7700 and
//!   HTTP on 7701, started through `ip netns exec` from a [`TestCluster`] (its CA,
//!   configs, logs, and its printing of the logs when a test fails). The test reaches
//!   them at `10.214.S.254`, which every node's `http.allow` lists.
//! - Verbs: [`cut`](Lab::cut) / [`heal`](Lab::heal) / [`partition`](Lab::partition)
//!   (nftables drops), [`loss`](Lab::loss) (nftables `numgen random mod 100 < N drop`),
//!   [`delay`](Lab::delay) (an `NFQUEUE` rule and a [`nfqueue::DelayQueue`] per node,
//!   since this kernel has no netem), [`starve`](Lab::starve) (the cgroup v1 cpu
//!   controller, [`cgroup::CpuLimit`]), [`pause`](Lab::pause) / [`resume`](Lab::resume)
//!   (SIGSTOP / SIGCONT), [`kill`](Lab::kill), [`stop`](Lab::stop) (SIGTERM) and
//!   [`restart`](Lab::restart).
//! - [`observe::Observer`]: pollers that record `/primary` and `/cluster` for counting.
//! - [`duress`]: the five duress scenarios, shared by `tests/tests/duress.rs` (short
//!   forms) and `tests/benches/duress.rs` (long forms).
//!
//! Every fault lives inside a node's namespace and acts on its *egress* (a one-way
//! link is hurt once): addresses are never rewritten, so the agents' admission rules
//! (a hello must come from the address it advertises) see the real peers. Faults touch
//! UDP only, where the agents talk; the observer's HTTP (TCP) goes through untouched.
//!
//! Owns: the namespaces, bridge, nftables tables, delay threads and cgroups it makes,
//! all named `qdl<pid>…`; all undone on drop (a panicking test included), and leftovers
//! of dead test processes removed when a lab starts. It must never touch anything not
//! named with its prefix, install a rule in the root namespace, or run without root
//! (callers check [`available`] and skip).

pub mod cgroup;
pub mod duress;
pub mod net;
pub mod nfqueue;
pub mod observe;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

pub use net::Net;
pub use nfqueue::{DelayQueue, DelayStats};
pub use observe::{Observer, Record};

use crate::TestCluster;

/// The prefix of every name the lab makes.
pub const PREFIX: &str = "qdl";
/// The lab's addresses: `10.214.S.0/24`.
const OCTET: u8 = 214;
const QUIC_PORT: u16 = 7700;
const HTTP_PORT: u16 = 7701;

/// Why the lab cannot run here, if it cannot: root, `ip`, `nft`, `iptables-nft`, NFQUEUE.
pub fn available() -> Result<(), String> {
    if !net::is_root() {
        return Err("the duress lab needs root (namespaces, nftables, cgroups)".into());
    }
    net::run(&["ip", "netns", "list"]).map_err(|e| format!("iproute2: {e}"))?;
    net::run(&["nft", "--version"]).map_err(|e| format!("nftables: {e}"))?;
    net::run(&["iptables-nft", "--version"]).map_err(|e| format!("iptables: {e}"))?;
    if !Path::new("/proc/net/netfilter/nfnetlink_queue").exists() {
        return Err("the kernel has no nfnetlink_queue (NFQUEUE)".into());
    }
    Ok(())
}

/// Which links [`Lab::loss`] hurts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Links {
    /// Every node's outgoing packets: each one-way link loses N %.
    All,
    /// Node `i`'s packets in and out.
    Node(usize),
}

/// Nodes in namespaces running real agents; see the module documentation.
pub struct Lab {
    // Field order is drop order: the agents first, then the faults, then the network.
    cluster: TestCluster,
    delays: Vec<Option<DelayQueue>>,
    delay_stats: DelayStats,
    limits: Vec<Option<cgroup::CpuLimit>>,
    paused: Vec<bool>,
    /// (from, to): node `from`'s packets to `to` are dropped.
    cuts: Vec<(usize, usize)>,
    /// Loss per node: (egress %, ingress %).
    loss: Vec<(u32, u32)>,
    net: Net,
}

impl Lab {
    /// `n` nodes at default settings, converged, with one primary; `extra` is appended
    /// to every node's config (start it with a table header, or make it empty).
    pub fn start(n: usize, extra: &str) -> Result<Lab, String> {
        available()?;
        cgroup::clean_stale(PREFIX);
        let net = Net::new(PREFIX, OCTET, n)?;
        let mut cluster = TestCluster::builder(n).build();
        let quic: Vec<SocketAddr> = (0..n)
            .map(|i| {
                format!("{}:{QUIC_PORT}", net.ip(i as u8 + 1))
                    .parse()
                    .expect("the lab's own address")
            })
            .collect();
        for i in 0..n {
            let mut c = cluster.config(i).clone();
            c.quic = quic[i];
            c.peers = quic
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, a)| *a)
                .collect();
            c.http = format!("{}:{HTTP_PORT}", net.ip(i as u8 + 1))
                .parse()
                .expect("an address");
            // Before any table header of `extra`: these land in `[http]`.
            c.extra = format!("allow = [\"127.0.0.0/8\", \"{}/24\"]\n{extra}", net.ip(0));
            cluster.set_config(i, c);
            let wrap = net.exec_prefix(i + 1);
            cluster.set_wrapper(i, &wrap.iter().map(String::as_str).collect::<Vec<_>>());
        }
        for k in 1..=n {
            net.nft(k, &table())?;
        }
        let mut lab = Lab {
            cluster,
            delays: (0..n).map(|_| None).collect(),
            delay_stats: DelayStats::default(),
            limits: (0..n).map(|_| None).collect(),
            paused: vec![false; n],
            cuts: Vec::new(),
            loss: vec![(0, 0); n],
            net,
        };
        for i in 0..n {
            lab.cluster.start(i);
        }
        if !lab.cluster.wait_converged(Duration::from_secs(30)) {
            return Err("the lab's cluster did not converge within 30 s".into());
        }
        if crate::primary::wait_one_primary(&lab.http_addrs(), Duration::from_secs(20)).is_none() {
            return Err("the lab's cluster elected no primary within 20 s".into());
        }
        Ok(lab)
    }

    pub fn nodes(&self) -> usize {
        self.net.nodes()
    }

    pub fn cluster(&self) -> &TestCluster {
        &self.cluster
    }

    pub fn cluster_mut(&mut self) -> &mut TestCluster {
        &mut self.cluster
    }

    pub fn net(&self) -> &Net {
        &self.net
    }

    pub fn id(&self, i: usize) -> String {
        self.cluster.id(i).to_owned()
    }

    pub fn http_addrs(&self) -> Vec<SocketAddr> {
        (0..self.nodes())
            .map(|i| self.cluster.http_addr(i))
            .collect()
    }

    /// The node answering `/primary` 200 now, if exactly one does.
    pub fn primary(&self) -> Option<usize> {
        crate::primary::current_primary(&self.http_addrs())
    }

    fn ip_of(&self, i: usize) -> String {
        self.net.ip(i as u8 + 1)
    }

    /// Drops every packet between `a` and `b`, both ways.
    pub fn cut(&mut self, a: usize, b: usize) -> Result<(), String> {
        self.cut_one_way(a, b)?;
        self.cut_one_way(b, a)
    }

    /// Drops node `from`'s packets to node `to` (`to` still reaches `from`).
    pub fn cut_one_way(&mut self, from: usize, to: usize) -> Result<(), String> {
        if !self.cuts.contains(&(from, to)) {
            self.cuts.push((from, to));
        }
        self.apply_cuts(from)
    }

    /// Splits the nodes into groups that hear only each other; nodes in no group keep
    /// every link.
    pub fn partition(&mut self, groups: &[&[usize]]) -> Result<(), String> {
        for (x, g) in groups.iter().enumerate() {
            for (y, h) in groups.iter().enumerate() {
                if x != y {
                    for &a in *g {
                        for &b in *h {
                            if !self.cuts.contains(&(a, b)) {
                                self.cuts.push((a, b));
                            }
                        }
                    }
                }
            }
        }
        for i in 0..self.nodes() {
            self.apply_cuts(i)?;
        }
        Ok(())
    }

    /// Removes every cut and partition.
    pub fn heal(&mut self) -> Result<(), String> {
        self.cuts.clear();
        for i in 0..self.nodes() {
            self.apply_cuts(i)?;
        }
        Ok(())
    }

    fn apply_cuts(&self, i: usize) -> Result<(), String> {
        let mut script = format!("flush chain inet {PREFIX} cut\n");
        for (_, to) in self.cuts.iter().filter(|(from, _)| *from == i) {
            script.push_str(&format!(
                "add rule inet {PREFIX} cut ip daddr {} drop\n",
                self.ip_of(*to)
            ));
        }
        self.net.nft(i + 1, &script)
    }

    /// Drops `percent` % of the agents' packets (UDP between nodes) on `links`; 0
    /// removes that loss.
    pub fn loss(&mut self, links: Links, percent: u32) -> Result<(), String> {
        assert!(percent <= 100);
        match links {
            Links::All => {
                for l in &mut self.loss {
                    l.0 = percent;
                }
            }
            Links::Node(i) => self.loss[i] = (percent, percent),
        }
        for i in 0..self.nodes() {
            let (out, inp) = self.loss[i];
            let subnet = format!("{}/24", self.net.ip(0));
            let mut script =
                format!("flush chain inet {PREFIX} loss_out\nflush chain inet {PREFIX} loss_in\n");
            if out > 0 {
                script.push_str(&format!(
                    "add rule inet {PREFIX} loss_out meta l4proto udp ip daddr {subnet} numgen random mod 100 < {out} drop\n"
                ));
            }
            if inp > 0 {
                script.push_str(&format!(
                    "add rule inet {PREFIX} loss_in meta l4proto udp ip saddr {subnet} numgen random mod 100 < {inp} drop\n"
                ));
            }
            self.net.nft(i + 1, &script)?;
        }
        Ok(())
    }

    /// Delays every node's outgoing agent packets by `delay ± jitter` (uniform, per
    /// packet, so packets reorder); a zero delay and jitter removes it.
    ///
    /// The rule that hands packets to the queue is an iptables `NFQUEUE` target: this
    /// kernel has the xtables target but not nftables' own `queue` expression, and
    /// `iptables-nft` installs it through nftables' xtables compatibility. It sits at
    /// the filter hook's priority 0, after the lab's cut and loss chains.
    pub fn delay(&mut self, delay: Duration, jitter: Duration) -> Result<(), String> {
        let off = delay.is_zero() && jitter.is_zero();
        let subnet = format!("{}/24", self.net.ip(0));
        for i in 0..self.nodes() {
            let k = i + 1;
            let ns = self.net.netns(k);
            // `--queue-bypass`: if the queue's reader is gone, packets pass instead of
            // being dropped (a harness failure must not look like loss).
            let rule = |op: &str| {
                net::run(&[
                    "ip",
                    "netns",
                    "exec",
                    &ns,
                    "iptables-nft",
                    op,
                    "OUTPUT",
                    "-p",
                    "udp",
                    "-d",
                    &subnet,
                    "-j",
                    "NFQUEUE",
                    "--queue-num",
                    "0",
                    "--queue-bypass",
                ])
                .map(drop)
            };
            if off {
                // The rule first, so no packet waits on a queue nobody reads.
                if let Some(q) = self.delays[i].take() {
                    rule("-D")?;
                    self.delay_stats.add(&q.stop());
                }
                continue;
            }
            match &self.delays[i] {
                Some(q) => q.set(delay, jitter),
                None => {
                    let seed = 0xD15E_A5E0 + k as u64;
                    self.delays[i] = Some(DelayQueue::start(&ns, delay, jitter, seed)?);
                    rule("-A")?;
                }
            }
        }
        Ok(())
    }

    /// What the delay queues did so far (the stopped ones; call after `delay(0, 0)`).
    pub fn delay_stats(&self) -> DelayStats {
        self.delay_stats
    }

    /// Holds node `i`'s agent to `percent` % of one core until [`unstarve`](Self::unstarve).
    pub fn starve(&mut self, i: usize, percent: u32) -> Result<(), String> {
        if !cgroup::available() {
            return Err("no cgroup v1 cpu controller at /sys/fs/cgroup/cpu".into());
        }
        self.limits[i] = None;
        let name = format!("{}n{}", self.net.tag(), i + 1);
        self.limits[i] = Some(cgroup::CpuLimit::apply(
            &name,
            self.cluster.pid(i),
            percent,
        )?);
        Ok(())
    }

    /// Gives node `i` its CPU back; how often and how long it was throttled.
    pub fn unstarve(&mut self, i: usize) -> (u64, Duration) {
        self.limits[i]
            .take()
            .map(|l| l.throttled())
            .unwrap_or_default()
    }

    /// SIGSTOP: the agent freezes, its sockets stay open.
    pub fn pause(&mut self, i: usize) {
        self.cluster.stop(i);
        self.paused[i] = true;
    }

    /// SIGCONT after [`pause`](Self::pause).
    pub fn resume(&mut self, i: usize) {
        self.cluster.cont(i);
        self.paused[i] = false;
    }

    /// SIGKILL.
    pub fn kill(&mut self, i: usize) {
        self.limits[i] = None;
        self.cluster.kill(i);
        self.paused[i] = false;
    }

    /// SIGTERM, and waits for the agent to exit (it hands over first if primary).
    pub fn stop(&mut self, i: usize) {
        self.limits[i] = None;
        self.cluster.term(i);
    }

    /// Starts node `i` again (after [`kill`](Self::kill) or [`stop`](Self::stop)).
    pub fn restart(&mut self, i: usize) {
        self.cluster.start(i);
    }

    /// Lines of node `i`'s log containing `needle`.
    pub fn log_count(&self, i: usize, needle: &str) -> usize {
        self.cluster
            .log(i)
            .lines()
            .filter(|l| l.contains(needle))
            .count()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        // SIGKILL ends a stopped or throttled agent too; continuing and releasing them
        // first only spares the kernel a throttled exit.
        for l in &mut self.limits {
            *l = None;
        }
        for i in 0..self.paused.len() {
            if self.paused[i] && self.cluster.is_running(i) {
                self.cluster.cont(i);
            }
        }
        for q in &mut self.delays {
            *q = None;
        }
    }
}

/// The lab's nftables table in a node's namespace: one chain per verb, in the order a
/// packet meets them (cut, then loss; the delay's queue rule comes after them, at
/// priority 0), all empty at first.
fn table() -> String {
    format!(
        "table inet {PREFIX} {{\n\
         \x20 chain cut {{ type filter hook output priority -30; policy accept; }}\n\
         \x20 chain loss_out {{ type filter hook output priority -20; policy accept; }}\n\
         \x20 chain loss_in {{ type filter hook input priority -20; policy accept; }}\n\
         }}\n"
    )
}
