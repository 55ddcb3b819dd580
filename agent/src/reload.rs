//! Reloading the configuration (`systemctl reload quorate`, `kill -HUP`): which keys
//! apply to a running agent and which need a restart.
//!
//! Owns the one table that classifies every config key ([`KEYS`]), the pure [`diff`] of
//! the running config and the file, and the wording of what a reload logs. A key is:
//! - [`Class::Live`]: applied within one driver turn, nothing restarted;
//! - [`Class::Restart`]: read at start only (sockets, identity, the timing the election's
//!   safety rests on). A reload keeps the running value, says so once per key, and
//!   `/cluster` lists it under `pending_restart` until the file and the agent agree
//!   again (PostgreSQL/Patroni's `pending_restart`);
//!
//! `peers` is live: after the cluster has bootstrapped it only says which addresses to
//! dial and admit (with the agreed member set's), and what the `members` reason compares.
//! A reload reads the file whole, so host names in `peers` and `advertise` are resolved
//! again: a peer whose name moved is dialed at its new address, a name that no longer
//! resolves makes the file invalid (nothing changes), and an `advertise` whose name moved
//! waits for a restart like any restart-only key.
//!
//! It must never do IO or apply anything: the driver applies a [`ReloadPlan`]
//! ([`crate::driver`]), the caller reads the file ([`crate::Reloader`]).

use std::fmt::Debug;

use crate::config::Config;

/// When a changed key takes effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// On reload.
    Live,
    /// At the next start; a reload keeps the running value.
    Restart,
}

impl Class {
    pub fn as_str(self) -> &'static str {
        match self {
            Class::Live => "live",
            Class::Restart => "restart",
        }
    }
}

/// One row of the table: a key as written in the file, its class, how to show its value
/// (and compare it: two configs differ in a key when they show it differently), and, for
/// keys a reload does not apply, how to keep the running value.
pub struct Key {
    pub name: &'static str,
    pub class: Class,
    show: fn(&Config) -> String,
    keep: fn(&mut Config, &Config),
}

fn dbg(v: &impl Debug) -> String {
    format!("{v:?}")
}

/// Live rows keep nothing: the new value is the one to use.
fn apply(_: &mut Config, _: &Config) {}

/// Every key of the config file, in the order of the operator guide's table. A new
/// field of [`Config`] without a row here fails `every_field_has_a_row` below.
pub const KEYS: &[Key] = &[
    Key {
        name: "cluster",
        class: Class::Restart,
        show: |c| c.cluster.to_string(),
        keep: |c, o| c.cluster = o.cluster.clone(),
    },
    Key {
        name: "node",
        class: Class::Restart,
        show: |c| c.node.to_string(),
        keep: |c, o| c.node = o.node.clone(),
    },
    Key {
        name: "listen",
        class: Class::Restart,
        show: |c| c.listen.to_string(),
        keep: |c, o| c.listen = o.listen,
    },
    Key {
        name: "advertise",
        class: Class::Restart,
        show: |c| c.advertise.to_string(),
        keep: |c, o| c.advertise = o.advertise,
    },
    Key {
        name: "peers",
        class: Class::Live,
        show: |c| {
            let p: Vec<String> = c.peers.iter().map(|p| p.to_string()).collect();
            format!("[{}]", p.join(", "))
        },
        keep: apply,
    },
    Key {
        name: "priority",
        class: Class::Live,
        show: |c| c.priority.to_string(),
        keep: apply,
    },
    Key {
        name: "roles",
        class: Class::Live,
        show: |c| dbg(&c.roles),
        keep: apply,
    },
    Key {
        name: "mode",
        class: Class::Restart,
        show: |c| c.mode.as_str().to_owned(),
        keep: |c, o| c.mode = o.mode,
    },
    Key {
        name: "state_dir",
        class: Class::Restart,
        show: |c| c.state_dir.display().to_string(),
        keep: |c, o| c.state_dir = o.state_dir.clone(),
    },
    Key {
        name: "control_allow",
        class: Class::Live,
        show: |c| cidrs(&c.control_allow),
        keep: apply,
    },
    Key {
        name: "log_level",
        class: Class::Live,
        show: |c| c.log_level.clone(),
        keep: apply,
    },
    Key {
        name: "tls.ca",
        class: Class::Live,
        show: |c| c.tls.ca.display().to_string(),
        keep: apply,
    },
    Key {
        name: "tls.cert",
        class: Class::Live,
        show: |c| c.tls.cert.display().to_string(),
        keep: apply,
    },
    Key {
        name: "tls.key",
        class: Class::Live,
        show: |c| c.tls.key.display().to_string(),
        keep: apply,
    },
    // Like the other TLS files, read again on every reload, changed path or not: new
    // handshakes check the new list at once, open operator connections it revokes close.
    Key {
        name: "tls.crl",
        class: Class::Live,
        show: |c| {
            c.tls_crl
                .as_ref()
                .map_or_else(|| "none".to_owned(), |p| p.display().to_string())
        },
        keep: apply,
    },
    Key {
        name: "timing.heartbeat_interval",
        class: Class::Restart,
        show: |c| c.timing.heartbeat_interval.to_string(),
        keep: |c, o| c.timing.heartbeat_interval = o.timing.heartbeat_interval,
    },
    Key {
        name: "timing.lease_heartbeat_interval",
        class: Class::Restart,
        show: |c| c.timing.lease_heartbeat_interval.to_string(),
        keep: |c, o| c.timing.lease_heartbeat_interval = o.timing.lease_heartbeat_interval,
    },
    Key {
        name: "timing.lease",
        class: Class::Restart,
        show: |c| c.timing.lease.to_string(),
        keep: |c, o| c.timing.lease = o.timing.lease,
    },
    Key {
        name: "timing.election_timeout",
        class: Class::Restart,
        show: |c| c.timing.election_timeout.to_string(),
        keep: |c, o| c.timing.election_timeout = o.timing.election_timeout,
    },
    Key {
        name: "timing.phi_threshold",
        class: Class::Restart,
        show: |c| c.timing.phi_threshold.to_string(),
        keep: |c, o| c.timing.phi_threshold = o.timing.phi_threshold,
    },
    Key {
        name: "timing.dead_after",
        class: Class::Restart,
        show: |c| c.timing.dead_after.to_string(),
        keep: |c, o| c.timing.dead_after = o.timing.dead_after,
    },
    Key {
        name: "election.preempt",
        class: Class::Live,
        show: |c| c.election.preempt.to_string(),
        keep: apply,
    },
    Key {
        name: "election.preempt_delay",
        class: Class::Live,
        show: |c| c.election.preempt_delay.to_string(),
        keep: apply,
    },
    Key {
        name: "http.listen",
        class: Class::Restart,
        show: |c| c.http.listen.to_string(),
        keep: |c, o| c.http.listen = o.http.listen,
    },
    Key {
        name: "http.allow",
        class: Class::Live,
        show: |c| cidrs(&c.http.allow),
        keep: apply,
    },
    Key {
        name: "http.drain_status",
        class: Class::Live,
        show: |c| c.http.drain_status.to_string(),
        keep: apply,
    },
    // The agent-check's port, and its drain/ramp timers, which live in its weight state
    // (`AgentWeight`, made once at start): simple over clever.
    Key {
        name: "haproxy_agent.listen",
        class: Class::Restart,
        show: |c| match &c.haproxy_agent {
            Some(h) => h.listen.to_string(),
            None => "off".into(),
        },
        keep: |c, o| match (&mut c.haproxy_agent, &o.haproxy_agent) {
            (Some(c), Some(o)) => c.listen = o.listen,
            (c, o) => *c = *o,
        },
    },
    Key {
        name: "haproxy_agent.maint_after",
        class: Class::Restart,
        show: |c| c.haproxy_agent.unwrap_or_default().maint_after.to_string(),
        keep: |c, o| match (&mut c.haproxy_agent, &o.haproxy_agent) {
            (Some(c), Some(o)) => c.maint_after = o.maint_after,
            (c, o) => *c = *o,
        },
    },
    Key {
        name: "haproxy_agent.ramp",
        class: Class::Restart,
        show: |c| c.haproxy_agent.unwrap_or_default().ramp.to_string(),
        keep: |c, o| match (&mut c.haproxy_agent, &o.haproxy_agent) {
            (Some(c), Some(o)) => c.ramp = o.ramp,
            (c, o) => *c = *o,
        },
    },
    Key {
        name: "load",
        class: Class::Live,
        show: |c| dbg(&c.load),
        keep: apply,
    },
    Key {
        name: "hooks",
        class: Class::Live,
        show: |c| dbg(&c.hooks),
        keep: apply,
    },
    Key {
        name: "app",
        class: Class::Live,
        show: |c| dbg(&c.app),
        keep: apply,
    },
    Key {
        name: "mount",
        class: Class::Live,
        show: |c| dbg(&c.mounts),
        keep: apply,
    },
    Key {
        name: "config",
        class: Class::Live,
        show: |c| dbg(&c.config_sets),
        keep: apply,
    },
    Key {
        name: "clock.max_offset",
        class: Class::Live,
        show: |c| c.clock.max_offset.to_string(),
        keep: apply,
    },
    Key {
        name: "task",
        class: Class::Live,
        show: |c| {
            let t: Vec<String> = c
                .tasks
                .iter()
                .map(|t| format!("{}={}", t.name, t.run_on))
                .collect();
            t.join(",")
        },
        keep: apply,
    },
];

fn cidrs(list: &[crate::config::Cidr]) -> String {
    let l: Vec<String> = list.iter().map(|c| c.to_string()).collect();
    format!("[{}]", l.join(", "))
}

/// A key whose value differs between the running config and the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub key: &'static str,
    pub class: Class,
    /// The value the agent runs with, as shown in messages.
    pub old: String,
    /// The value in the file.
    pub new: String,
}

impl Change {
    /// The warning a reload logs for a key it does not apply.
    pub fn pending_line(&self) -> String {
        let Change { key, old, new, .. } = self;
        match self.class {
            Class::Live => format!("reload: {key} changed ({old} → {new})"),
            Class::Restart => format!(
                "reload: {key} changed ({old} → {new}): needs a restart (systemctl restart quorate); still using {old}"
            ),
        }
    }
}

/// What a reload would change: every key whose value differs, with its class.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReloadPlan {
    pub changes: Vec<Change>,
}

impl ReloadPlan {
    /// Changed keys a reload applies.
    pub fn live(&self) -> impl Iterator<Item = &Change> {
        self.changes.iter().filter(|c| c.class == Class::Live)
    }

    /// Changed keys that wait for a restart (restart-only and bootstrap).
    pub fn pending(&self) -> impl Iterator<Item = &Change> {
        self.changes.iter().filter(|c| c.class != Class::Live)
    }

    /// Whether `key` changed.
    pub fn changed(&self, key: &str) -> bool {
        self.changes.iter().any(|c| c.key == key)
    }

    /// Whether any key in `[section]` (or the key `section` itself) changed.
    pub fn changed_in(&self, section: &str) -> bool {
        self.changes.iter().any(|c| {
            c.key == section
                || c.key
                    .strip_prefix(section)
                    .is_some_and(|rest| rest.starts_with('.'))
        })
    }

    /// The config to run with: the file's, but every key this plan does not apply keeps
    /// the running value. Both inputs were validated; the keys kept (identity, addresses,
    /// timing, peers) are only checked against each other, so the result is valid too.
    pub fn effective(&self, running: &Config, file: &Config) -> Config {
        let mut out = file.clone();
        for key in KEYS {
            if key.class != Class::Live {
                (key.keep)(&mut out, running);
            }
        }
        out
    }
}

/// Compares the running config with the file, key by key, in [`KEYS`] order.
pub fn diff(running: &Config, file: &Config) -> ReloadPlan {
    let changes = KEYS
        .iter()
        .filter_map(|k| {
            let (old, new) = ((k.show)(running), (k.show)(file));
            (old != new).then_some(Change {
                key: k.name,
                class: k.class,
                old,
                new,
            })
        })
        .collect();
    ReloadPlan { changes }
}

/// How a reload's line names new TLS material: the certificate's end, and the revocation
/// list's count when a list is or was configured (`crl` — a list dropped says `revokes
/// none`).
pub fn tls_applied(expires: Option<&str>, crl: bool, revoked: usize) -> String {
    let expires = expires.unwrap_or("at an unreadable date");
    if crl {
        format!("tls (certificate expires {expires}; crl revokes {revoked})")
    } else {
        format!("tls (certificate expires {expires})")
    }
}

/// What a reload did, for the caller (the binary applies `log_level`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReloadOutcome {
    /// What was applied, as named in the log line (`app`, `http.allow`, `tls (…)`).
    pub applied: Vec<String>,
    /// Keys in the file the running agent does not use yet (a restart applies them).
    pub pending_restart: Vec<String>,
    /// The new log filter, when `log_level` changed. `QUORATE_LOG`, when set, still wins.
    pub log_level: Option<String>,
}

/// Why a reload changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The file is invalid or unreadable: every error, one `file:line: reason` per line
    /// (an unresolvable name in `peers` too: names are resolved again on every reload).
    #[error(transparent)]
    Config(#[from] crate::config::ConfigErrors),
    /// A TLS file could not be loaded (it changed between the check and the load).
    #[error(transparent)]
    Tls(#[from] crate::config::tls::TlsError),
    /// The agent is stopping.
    #[error("the agent is stopping")]
    Stopped,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests_support::{config_text, parse};

    #[test]
    fn every_field_has_a_row() {
        // Naming every field: a new one does not compile until it is classified here and
        // in KEYS (and in the operator guide's table).
        let dir = tempfile::tempdir().unwrap();
        let c = parse(dir.path(), "");
        let Config {
            path: _,
            cluster: _,
            node: _,
            listen: _,
            advertise: _,
            peers: _,
            priority: _,
            roles: _,
            mode: _,
            state_dir: _,
            control_allow: _,
            log_level: _,
            tls: _,
            tls_crl: _,
            timing: _,
            http: _,
            election: _,
            load: _,
            hooks: _,
            app: _,
            mounts: _,
            config_sets: _,
            clock: _,
            tasks: _,
            haproxy_agent: _,
        } = c;
        let names: Vec<&str> = KEYS.iter().map(|k| k.name).collect();
        let mut unique = names.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), names.len(), "a key listed twice");
    }

    #[test]
    fn the_same_file_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let a = parse(dir.path(), "[app]\ncheck = \"tcp://127.0.0.1:1\"\n");
        let b = parse(dir.path(), "[app]\ncheck = \"tcp://127.0.0.1:1\"\n");
        assert_eq!(diff(&a, &b), ReloadPlan::default());
    }

    #[test]
    fn changes_are_classified() {
        let dir = tempfile::tempdir().unwrap();
        let old = parse(dir.path(), "");
        let new = parse(
            dir.path(),
            "log_level = \"debug\"\n\
             [timing]\nlease = \"200ms\"\n\
             [http]\nallow = [\"10.0.0.0/8\"]\ndrain_status = 503\n\
             [app]\ncheck = \"tcp://127.0.0.1:1\"\n\
             [haproxy_agent]\nlisten = \"127.0.0.1:7702\"\n",
        );
        let plan = diff(&old, &new);
        let got: Vec<(&str, Class)> = plan.changes.iter().map(|c| (c.key, c.class)).collect();
        assert_eq!(
            got,
            [
                ("log_level", Class::Live),
                ("timing.lease", Class::Restart),
                ("http.allow", Class::Live),
                ("http.drain_status", Class::Live),
                ("haproxy_agent.listen", Class::Restart),
                ("app", Class::Live),
            ]
        );
        let lease = &plan.changes[1];
        assert_eq!(
            lease.pending_line(),
            "reload: timing.lease changed (300ms → 200ms): needs a restart (systemctl restart quorate); still using 300ms"
        );
        assert!(plan.changed_in("http") && plan.changed_in("timing"));
        assert!(!plan.changed_in("tls") && !plan.changed_in("tim"));
    }

    #[test]
    fn the_effective_config_keeps_what_needs_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let old = parse(dir.path(), "");
        let new = parse(
            dir.path(),
            "priority = 7\n\
             [timing]\nlease = \"200ms\"\nelection_timeout = \"400ms\"\n\
             [http]\nlisten = \"127.0.0.1:9\"\nallow = [\"10.0.0.0/8\"]\n\
             [haproxy_agent]\nlisten = \"127.0.0.1:7702\"\n",
        );
        let plan = diff(&old, &new);
        let run = plan.effective(&old, &new);
        assert_eq!(run.priority, 7);
        assert_eq!(run.http.allow, new.http.allow);
        assert_eq!(run.timing.lease, old.timing.lease);
        assert_eq!(run.timing.election_timeout, old.timing.election_timeout);
        assert_eq!(run.http.listen, old.http.listen);
        assert!(run.haproxy_agent.is_none());
        // What stays pending is exactly what differs between the running config and
        // the file: a second reload of the same file says the same, nothing more.
        let again = diff(&run, &new);
        assert!(again.live().next().is_none());
        let pending: Vec<&str> = again.pending().map(|c| c.key).collect();
        assert_eq!(
            pending,
            [
                "timing.lease",
                "timing.election_timeout",
                "http.listen",
                "haproxy_agent.listen"
            ]
        );
        // Reverting the file clears them.
        assert_eq!(diff(&run, &old).pending().count(), 0);
    }

    #[test]
    fn peers_apply_live() {
        let dir = tempfile::tempdir().unwrap();
        let old = parse(dir.path(), "");
        let text = config_text(dir.path(), "").replace(
            "peers = [\"127.0.0.1:7801\"]",
            "peers = [\"127.0.0.1:7801\", \"127.0.0.1:7802\"]",
        );
        let new = crate::config::Config::parse(&dir.path().join("agent.toml"), &text).unwrap();
        let plan = diff(&old, &new);
        assert_eq!(plan.changes.len(), 1);
        assert_eq!(plan.changes[0].class, Class::Live);
        assert_eq!(plan.effective(&old, &new).peers, new.peers);
    }
}
