//! The commented default configuration file (`quorate-agent --print-default-config`),
//! which the packages ship as `/etc/quorate/agent.toml`.
//!
//! Owns: the text. Every value in it is formatted from the same `Default` impls the
//! parser uses, so the comments cannot drift from the code; a test uncomments every
//! default and checks that it parses to the defaults, and another keeps
//! `packaging/agent.toml` equal to this output. Entries that have no default (paths of
//! the operator's own files) appear as commented examples only: the shipped file must
//! never point at files that do not exist.

use std::fmt::Write as _;

use super::checks::RawApp;
use super::checks::{Clock, HaproxyAgent};
use super::model::{Cidr, Election, Hooks, Http, LoadLimits, Timing};

/// The port peers and operator tools use (UDP, QUIC).
pub const QUIC_PORT: u16 = 7700;

/// The text of the default file. `active`: write the defaults as live keys (for tests)
/// instead of comments; examples stay commented either way.
pub fn render(active: bool) -> String {
    let mut f = File {
        out: String::new(),
        active,
        after_header: false,
    };
    let timing = Timing::default();
    let election = Election::default();
    let http = Http::default();
    let agent = HaproxyAgent::default();
    let load = LoadLimits::default();
    let clock = Clock::default();
    let app = RawApp::default();
    let hooks = Hooks::default();

    f.text(&format!(
        "# quorate agent configuration (quorate-agent {}).\n\
         #\n\
         # Every key is shown at its default, commented out. To start a node, set `node`,\n\
         # `peers` and the three [tls] paths, then run `quorate-agent --check-config`.\n\
         # Durations take units (\"250ms\", \"30s\"); unknown keys are errors.\n\
         # `systemctl reload quorate` applies most changes live; the operator guide lists\n\
         # which keys need a restart.",
        env!("CARGO_PKG_VERSION")
    ));
    f.key(
        "The cluster's name; every node of one cluster sets the same.",
        "cluster",
        &quote(super::model::DEFAULT_CLUSTER),
    );
    f.example(
        "This node's id, a DNS label that its certificate names. Default: the hostname up\n\
         to its first dot, so one file can serve every node.",
        "node",
        "\"n1\"",
    );
    f.key(
        "Where to listen for peers and operator tools (QUIC over UDP).",
        "listen",
        &quote(&format!("0.0.0.0:{QUIC_PORT}")),
    );
    f.example(
        "The address peers reach this node at: ip:port or host:port. Default: the listen\n\
         address; when listening on every address, the address `node` resolves to if it\n\
         is a non-loopback address of this machine, else this machine's address on the\n\
         route to the first other peer.",
        "advertise",
        &quote(&format!("10.0.0.11:{QUIC_PORT}")),
    );
    f.example(
        "The nodes' addresses: ip:port, host:port or host (port 7700). This node's own\n\
         entry is skipped, so every node can list the same. Names are resolved at start\n\
         and on reload. A new cluster bootstraps its voters from them; after that,\n\
         `quorate member` changes who votes, and these are only dialed.",
        "peers",
        &format!("[\"10.0.0.12:{QUIC_PORT}\", \"10.0.0.13:{QUIC_PORT}\"]"),
    );
    f.key(
        "Higher is preferred as primary.",
        "priority",
        &super::model::default_priority().to_string(),
    );
    f.key(
        "Roles this node serves; the balancer asks /role/NAME.",
        "roles",
        "[]",
    );
    f.key(
        "\"member\", or \"witness\": votes, runs no checks, is never primary.",
        "mode",
        "\"member\"",
    );
    f.key(
        "Votes, terms and the event journal live here. It must be writable by the agent\n\
         (it is created at start if missing).",
        "state_dir",
        &quote(&super::model::default_state_dir().display().to_string()),
    );
    f.key(
        "Who may open operator connections (quorate status, drain, …).",
        "control_allow",
        &cidrs(&Cidr::loopback()),
    );

    f.key(
        "What the agent logs: a level (error, warn, info, debug) or per-module directives\n\
         such as \"info,quorate_agent::net=debug\". QUORATE_LOG in the environment wins.",
        "log_level",
        &quote(super::model::DEFAULT_LOG_LEVEL),
    );

    f.section(
        "Mutual TLS with the cluster's own CA: `quorate ca init` and `quorate ca issue`.\n\
         The key must be readable by the agent and by nobody else:\n\
         chown root:quorate KEY && chmod 0640 KEY.\n\
         {node} in these paths is replaced by the node id (/etc/quorate/tls/{node}.pem).",
        "[tls]",
        false,
    );
    f.example(
        "The cluster CA's certificate.",
        "ca",
        "\"/etc/quorate/tls/ca.pem\"",
    );
    f.example(
        "This node's certificate; it must name `node`, and not have ended.",
        "cert",
        "\"/etc/quorate/tls/n1.pem\"",
    );
    f.example(
        "This node's private key.",
        "key",
        "\"/etc/quorate/tls/n1.key\"",
    );
    f.example(
        "Certificates the cluster revoked (`quorate ca revoke` writes crl.pem): peers and\n\
         operators presenting one are refused. Reloads live. Default: none.",
        "crl",
        "\"/etc/quorate/tls/crl.pem\"",
    );

    f.section(
        "Heartbeats and failure detection. Restart-only, and the same on every node.",
        "[timing]",
        true,
    );
    f.key(
        "Heartbeats between every pair of nodes.",
        "heartbeat_interval",
        &quote(&timing.heartbeat_interval.to_string()),
    );
    f.key(
        "Heartbeats between the primary and each voter (they carry the lease).",
        "lease_heartbeat_interval",
        &quote(&timing.lease_heartbeat_interval.to_string()),
    );
    f.key(
        "How long a majority's acknowledgement keeps the primary primary.",
        "lease",
        &quote(&timing.lease.to_string()),
    );
    f.key(
        "Silence from the primary before voters elect another (longer than lease).",
        "election_timeout",
        &quote(&timing.election_timeout.to_string()),
    );
    f.key(
        "Suspicion level (phi) above which a peer is suspect.",
        "phi_threshold",
        &format!("{:.1}", timing.phi_threshold),
    );
    f.key(
        "How long a suspect peer must stay silent before it is marked dead.",
        "dead_after",
        &quote(&timing.dead_after.to_string()),
    );

    f.section("Priorities and preemption.", "[election]", true);
    f.key(
        "Hand the primary role to a higher-priority node once it has been eligible for\n\
         preempt_delay.",
        "preempt",
        &election.preempt.to_string(),
    );
    f.key(
        "A node back from a pause or a cut waits it out again, for the role and for the\n\
         singleton tasks it prefers.",
        "preempt_delay",
        &quote(&election.preempt_delay.to_string()),
    );

    f.section(
        "Health endpoints for the load balancer (/health, /primary, …).",
        "[http]",
        true,
    );
    f.key("", "listen", &quote(&http.listen.to_string()));
    f.key(
        "Who may read /cluster, /metrics and ?verbose reasons, and send X-Haproxy-Server-State;\nput the load balancer's addresses here: they also get connection slots kept for them.",
        "allow",
        &cidrs(&http.allow),
    );
    f.key(
        "What /health answers while draining (404 suits HAProxy's disable-on-404).",
        "drain_status",
        &http.drain_status.to_string(),
    );

    f.section(
        "HAProxy agent-check port (`agent-check agent-port 7702`). Off unless the section\n\
         is present.",
        "[haproxy_agent]",
        false,
    );
    f.example("", "listen", &quote(&agent.listen.to_string()));
    f.example(
        "How long a drained node answers `drain` before `maint` (balancer interval × fall).",
        "maint_after",
        &quote(&agent.maint_after.to_string()),
    );
    f.example(
        "A node back to health ramps its weight up over this long.",
        "ramp",
        &quote(&agent.ramp.to_string()),
    );

    f.section(
        "Load above these marks the node overloaded. Off unless the section is present.",
        "[load]",
        false,
    );
    f.example("CPU busy, 0..1.", "max_cpu", &format!("{}", load.max_cpu));
    f.example(
        "Load average per core.",
        "max_load_per_core",
        &format!("{:.1}", load.max_load_per_core),
    );
    f.example(
        "Memory used, 0..1.",
        "max_mem",
        &format!("{}", load.max_mem),
    );

    f.section("Clock offsets between nodes.", "[clock]", true);
    f.key(
        "Offset from most of the cluster above which a node's clock is at fault.",
        "max_offset",
        &quote(&clock.max_offset.to_string()),
    );

    f.section(
        "The application on this node. No check: the app is not judged.",
        "[app]",
        true,
    );
    f.example(
        "http://HOST:PORT/PATH (a GET), tcp://HOST:PORT (a connect) or exec:COMMAND (exit 0).",
        "check",
        "\"http://127.0.0.1:8080/status\"",
    );
    f.key(
        "The status an http:// check expects.",
        "expect_status",
        &app.expect_status.to_string(),
    );
    f.key("", "interval", &quote(&app.interval.to_string()));
    f.key("", "timeout", &quote(&app.timeout.to_string()));
    f.key(
        "Passes in a row before a failing app counts as passing.",
        "rise",
        &app.rise.to_string(),
    );
    f.key(
        "Failures in a row before a passing app counts as failing.",
        "fall",
        &app.fall.to_string(),
    );
    f.example(
        "The app's version, from a file or a command (not both).",
        "version_file",
        "\"/opt/app/VERSION\"",
    );
    f.example("", "version_command", "\"/opt/app/bin/version\"");
    f.key(
        "Hold a node that starts on a newer app version than the primary's not-ready\n\
         until `quorate upgrade allow`.",
        "upgrade_gate",
        &app.upgrade_gate.to_string(),
    );

    f.section(
        "Programs run on role changes, with QUORATE_NODE, QUORATE_TERM, QUORATE_ROLE and\n\
         QUORATE_PREVIOUS_ROLE set. They run inside the service's sandbox. Absolute paths\n\
         of executable files: --check-config refuses anything else.",
        "[hooks]",
        true,
    );
    f.example("", "on_primary", "\"/etc/quorate/hooks/primary\"");
    f.example("", "on_secondary", "\"/etc/quorate/hooks/secondary\"");
    f.example("", "on_fault", "\"/etc/quorate/hooks/fault\"");
    f.key(
        "A hook still running after this is killed.",
        "timeout",
        &quote(&hooks.timeout.to_string()),
    );

    f.section(
        "Paths the application needs (repeat the section for each). A path that must be\n\
         writable needs a systemd drop-in: see `quorate-agent --check-config`.",
        "[[mount]]",
        false,
    );
    f.example("", "path", "\"/mnt/nfs/repository\"");
    f.example(
        "It must be a mount point, not a directory an unmounted share left behind.",
        "expect_mount",
        "true",
    );
    f.example("Create, write and remove a probe file.", "writable", "true");
    f.example(
        "Every node must see the same storage here (nonce files under PATH/.quorate/).",
        "shared",
        "true",
    );
    f.example(
        "A failing required mount makes the node unhealthy; an optional one is shown.",
        "required",
        "true",
    );
    f.example("Expected filesystem type.", "fstype", "\"nfs4\"");
    f.example("", "interval", "\"2s\"");
    f.example("", "timeout", "\"5s\"");

    f.section(
        "Files that must be equal on every node, but for ignored lines (repeat per set).",
        "[[config]]",
        false,
    );
    f.example("", "name", "\"app-config\"");
    f.example(
        "Absolute paths; wildcards in the file name only.",
        "paths",
        "[\"/opt/app/config/*.xml\"]",
    );
    f.example(
        "Regexes; matching lines (per-node values) are not compared.",
        "ignore",
        "['site_url']",
    );

    f.section(
        "Singleton tasks: `quorate task should-run NAME` exits 0 on exactly one node.",
        "[[task]]",
        false,
    );
    f.example("", "name", "\"nightly-report\"");
    f.example(
        "\"primary\", \"node:N\", \"prefer:N1,N2\" (the first healthy) or \"spread\".",
        "run_on",
        "\"primary\"",
    );
    f.out
}

struct File {
    out: String,
    active: bool,
    /// The last line written was a section header: no blank line before its first key.
    after_header: bool,
}

impl File {
    fn text(&mut self, text: &str) {
        self.out.push_str(text);
        self.out.push('\n');
    }

    fn gap(&mut self) {
        self.out.push('\n');
    }

    fn comment(&mut self, doc: &str) {
        if !doc.is_empty() && !std::mem::take(&mut self.after_header) {
            self.gap();
        }
        for line in doc.lines() {
            let _ = writeln!(self.out, "# {line}");
        }
    }

    /// A section header: live in the active variant only when `default_on` (writing the
    /// header of an optional section turns the feature on).
    fn section(&mut self, doc: &str, header: &str, default_on: bool) {
        self.gap();
        self.comment(doc);
        let hash = if self.active && default_on { "" } else { "# " };
        let _ = writeln!(self.out, "{hash}{header}");
        self.after_header = true;
    }

    /// A key at its default.
    fn key(&mut self, doc: &str, key: &str, value: &str) {
        self.comment(doc);
        self.after_header = false;
        let hash = if self.active { "" } else { "# " };
        let _ = writeln!(self.out, "{hash}{key} = {value}");
    }

    /// An example value, commented in both variants.
    fn example(&mut self, doc: &str, key: &str, value: &str) {
        self.comment(doc);
        self.after_header = false;
        let _ = writeln!(self.out, "# {key} = {value}");
    }
}

fn quote(s: &str) -> String {
    format!("{s:?}")
}

fn cidrs(list: &[Cidr]) -> String {
    let items: Vec<String> = list.iter().map(|c| quote(&c.to_string())).collect();
    format!("[{}]", items.join(", "))
}
