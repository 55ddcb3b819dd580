//! The checked configuration: what the agent runs on, once `validate.rs` has read the
//! file. Plain types and the few conversions the agent needs (`Timing::core`,
//! `Config::core_config`); it never reads a file (that is `validate.rs`) and never
//! parses TOML itself.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::checks::{App, Clock, ConfigSet, HaproxyAgent, Mount, Task};
use super::duration::Dur;
use super::tls::TlsPaths;

/// A validated configuration. Every value here has been checked; the rest of the agent
/// trusts it.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it was read from (for messages).
    pub path: PathBuf,
    pub cluster: proto::ClusterName,
    pub node: proto::NodeId,
    pub listen: SocketAddr,
    pub advertise: SocketAddr,
    pub peers: Vec<SocketAddr>,
    pub priority: u32,
    pub roles: Vec<String>,
    pub mode: proto::Mode,
    pub state_dir: PathBuf,
    pub control_allow: Vec<Cidr>,
    /// The log filter (a tracing `EnvFilter` directive such as `info` or
    /// `info,quorate_agent::net=debug`); `QUORATE_LOG` in the environment wins.
    pub log_level: String,
    pub tls: TlsPaths,
    /// `[tls] crl`: the certificate revocation lists this agent enforces (`quorate ca
    /// revoke` writes them); none if absent.
    pub tls_crl: Option<PathBuf>,
    pub timing: Timing,
    pub http: Http,
    pub election: Election,
    pub load: Option<LoadLimits>,
    pub hooks: Hooks,
    pub app: App,
    pub mounts: Vec<Mount>,
    pub config_sets: Vec<ConfigSet>,
    pub clock: Clock,
    pub tasks: Vec<Task>,
    pub haproxy_agent: Option<HaproxyAgent>,
}

/// Priorities and preemption.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Election {
    /// Hand the primary role to a higher-priority node once it has been eligible for
    /// `preempt_delay`.
    pub preempt: bool,
    pub preempt_delay: Dur,
}

impl Default for Election {
    fn default() -> Self {
        Self {
            preempt: true,
            preempt_delay: Dur(Duration::from_secs(30)),
        }
    }
}

/// Programs run on role changes. Each runs with a timeout and never blocks the agent.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Hooks {
    pub on_primary: Option<PathBuf>,
    pub on_secondary: Option<PathBuf>,
    pub on_fault: Option<PathBuf>,
    pub timeout: Dur,
}

impl Default for Hooks {
    fn default() -> Self {
        Self {
            on_primary: None,
            on_secondary: None,
            on_fault: None,
            timeout: Dur(Duration::from_secs(10)),
        }
    }
}

/// Heartbeat and failure-detection timing. Defaults: DESIGN.md "Configuration".
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Timing {
    /// Between every pair of nodes.
    pub heartbeat_interval: Dur,
    /// Between the primary and each voter (carries lease acknowledgements).
    pub lease_heartbeat_interval: Dur,
    pub lease: Dur,
    pub election_timeout: Dur,
    /// Suspicion level (phi) above which a peer is `suspect`.
    pub phi_threshold: f64,
    /// How long a peer must stay silent, once suspected, before it is marked `dead`.
    pub dead_after: Dur,
}

impl Timing {
    /// What the core runs on: the one conversion from `[timing]` to `core::Timing`.
    pub fn core(&self) -> crate::core::Timing {
        crate::core::Timing {
            heartbeat_interval: self.heartbeat_interval.0,
            lease_heartbeat_interval: self.lease_heartbeat_interval.0,
            lease: self.lease.0,
            election_timeout: self.election_timeout.0,
            phi_threshold: self.phi_threshold,
            dead_after: self.dead_after.0,
        }
    }

    /// The operator guide's lean preset: three times the default intervals, for about a
    /// third of the packets and of the idle CPU, and failover in about 1.5 s.
    pub fn lean_preset() -> Self {
        Self {
            heartbeat_interval: Dur(Duration::from_millis(750)),
            lease_heartbeat_interval: Dur(Duration::from_millis(150)),
            lease: Dur(Duration::from_millis(900)),
            election_timeout: Dur(Duration::from_millis(1350)),
            ..Self::default()
        }
    }

    /// The operator guide's fast preset: sub-300 ms failover on a quiet LAN.
    pub fn fast_preset() -> Self {
        Self {
            heartbeat_interval: Dur(Duration::from_millis(100)),
            lease_heartbeat_interval: Dur(Duration::from_millis(20)),
            lease: Dur(Duration::from_millis(150)),
            election_timeout: Dur(Duration::from_millis(200)),
            ..Self::default()
        }
    }
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            heartbeat_interval: Dur(Duration::from_millis(250)),
            lease_heartbeat_interval: Dur(Duration::from_millis(50)),
            lease: Dur(Duration::from_millis(300)),
            election_timeout: Dur(Duration::from_millis(450)),
            phi_threshold: 8.0,
            dead_after: Dur(Duration::from_secs(2)),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Http {
    pub listen: SocketAddr,
    /// Who may read `/cluster` and `/metrics`.
    pub allow: Vec<Cidr>,
    /// What `/health` answers while draining: 404 suits HAProxy's `disable-on-404`.
    pub drain_status: u16,
}

impl Default for Http {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([0, 0, 0, 0], 7701)),
            allow: Cidr::loopback(),
            drain_status: 404,
        }
    }
}

/// Load thresholds above which a node is `overloaded`. Absent section: no threshold.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoadLimits {
    pub max_cpu: f64,
    pub max_load_per_core: f64,
    pub max_mem: f64,
}

impl Default for LoadLimits {
    fn default() -> Self {
        Self {
            max_cpu: 0.95,
            max_load_per_core: 4.0,
            max_mem: 0.95,
        }
    }
}

/// An address range such as `127.0.0.0/8` or `::1/128`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn loopback() -> Vec<Cidr> {
        vec![
            Cidr {
                addr: IpAddr::from([127, 0, 0, 0]),
                prefix: 8,
            },
            Cidr {
                addr: IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1]),
                prefix: 128,
            },
        ]
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl std::str::FromStr for Cidr {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("{s:?} is not an address range (like 10.0.0.0/8)"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{s:?}: prefix must be 0..={max}"))?,
            None => max,
        };
        Ok(Cidr { addr, prefix })
    }
}

impl<'de> Deserialize<'de> for Cidr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// The cluster name when the file sets none.
pub const DEFAULT_CLUSTER: &str = "quorate";

pub(super) fn default_priority() -> u32 {
    100
}

/// The log filter when `log_level` is not set.
pub const DEFAULT_LOG_LEVEL: &str = "info";

pub(super) fn default_state_dir() -> PathBuf {
    PathBuf::from("/var/lib/quorate")
}

impl Config {
    /// What the packaged service's sandbox (`ProtectSystem=strict`: only `state_dir` is
    /// writable; `NoNewPrivileges`) would stop this config from doing, each with the
    /// drop-in that allows it. `--check-config` prints them; they are not errors, since
    /// the agent may run outside the packaged unit.
    pub fn sandbox_notes(&self) -> Vec<String> {
        let mut notes = Vec::new();
        for m in self.mounts.iter().filter(|m| m.writable || m.shared) {
            if m.path.starts_with(&self.state_dir) {
                continue;
            }
            notes.push(format!(
                "mount {} is written to ({}): the packaged service may write only under {}; \
                 allow it with `systemctl edit quorate` and the lines \
                 `[Service]` `ReadWritePaths={}`",
                m.path.display(),
                if m.writable {
                    "writable = true"
                } else {
                    "shared = true"
                },
                self.state_dir.display(),
                m.path.display()
            ));
        }
        let hooks = [
            ("on_primary", &self.hooks.on_primary),
            ("on_secondary", &self.hooks.on_secondary),
            ("on_fault", &self.hooks.on_fault),
        ];
        for (name, hook) in hooks {
            if let Some(path) = hook {
                notes.push(format!(
                    "hooks.{name} {} runs inside the service's sandbox, as the service's user, \
                     with no new privileges and a read-only system: a hook that writes files or \
                     needs root needs a drop-in (`systemctl edit quorate`: ReadWritePaths=, or \
                     have the hook ask a privileged service over a socket)",
                    path.display()
                ));
            }
        }
        notes
    }

    /// What the core runs with, for this start (`incarnation`) of the agent.
    pub fn core_config(&self, incarnation: proto::Incarnation) -> crate::core::CoreConfig {
        crate::core::CoreConfig {
            node: self.node.clone(),
            incarnation,
            mode: self.mode,
            priority: self.priority,
            advertise: self.advertise.to_string(),
            bootstrap: self.bootstrap_list(),
            bootstrap_hash: self.bootstrap_hash(),
            timing: self.timing.core(),
            preempt: self
                .election
                .preempt
                .then_some(self.election.preempt_delay.0),
            tasks: self.tasks.clone(),
            task_return_delay: self.election.preempt_delay.0,
            fault: None,
        }
    }

    /// The sorted addresses of the peers plus this node: what a new cluster bootstraps
    /// from, and what is compared with the agreed member set (`members` reason).
    pub fn bootstrap_list(&self) -> Vec<String> {
        let mut all: Vec<String> = self.peers.iter().map(|p| p.to_string()).collect();
        all.push(self.advertise.to_string());
        all.sort();
        all.dedup();
        all
    }

    /// Hash of [`bootstrap_list`](Self::bootstrap_list): nodes that bootstrap together
    /// must have equal lists (`NodeState::peers_hash`).
    pub fn bootstrap_hash(&self) -> [u8; 8] {
        let h = blake3::hash(self.bootstrap_list().join(",").as_bytes());
        let mut out = [0u8; 8];
        out.copy_from_slice(&h.as_bytes()[..8]);
        out
    }
}
