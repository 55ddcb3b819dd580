//! Role-change hooks: `on_primary`, `on_secondary`, `on_fault`.
//!
//! Hooks run one at a time on a task of their own, each with a timeout after which its
//! whole process group is killed (a hook's own children too). Runs coalesce: while one
//! runs, only the newest one fired waits, so a hook for a role already gone never runs
//! late; each gets the term it is about (`QUORATE_TERM`). A hook's environment is
//! clean: `PATH` and the `QUORATE_*` variables, never the agent's own. A hook that fails
//! or hangs is logged; it never blocks the driver or delays a heartbeat.
//!
//! Which role change runs which hook is decided here, in one place: [`on_role_change`]
//! (the role the driver saw at the end of a turn moved) and [`on_event`] (a core event
//! that is a fault); the driver fires what they return. The logger fires nothing.
//!
//! The runner counts every run it starts and every failure ([`Hooks::counts`], atomics
//! the driver reads when it publishes a view), across reloads.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use proto::Role;
use tokio::sync::watch;

use crate::config;
use crate::core::Event;

/// Which hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    OnPrimary,
    OnSecondary,
    OnFault,
}

impl Hook {
    /// Every hook, in the order [`Hooks::counts`] lists them.
    pub const ALL: [Hook; 3] = [Hook::OnPrimary, Hook::OnSecondary, Hook::OnFault];

    /// Its config key, `QUORATE_HOOK` and its metric label.
    pub fn name(self) -> &'static str {
        match self {
            Hook::OnPrimary => "on_primary",
            Hook::OnSecondary => "on_secondary",
            Hook::OnFault => "on_fault",
        }
    }
}

/// One run of a hook, with the environment it gets.
#[derive(Debug, Clone)]
pub struct HookRun {
    pub hook: Hook,
    pub term: u64,
    pub role: String,
    pub previous_role: String,
}

/// The `PATH` a hook runs with (its environment is otherwise only `QUORATE_*`).
pub const HOOK_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Hands hook runs to the runner task: the newest one fired, replacing any that has not
/// started yet.
#[derive(Debug, Clone)]
pub struct Hooks {
    tx: Option<watch::Sender<Option<HookRun>>>,
    counts: Arc<Counts>,
}

/// Runs started and failed, per hook in [`Hook::ALL`]'s order.
#[derive(Debug, Default)]
struct Counts {
    runs: [AtomicU64; 3],
    failures: [AtomicU64; 3],
}

impl Counts {
    fn ran(&self, hook: Hook, ok: bool) {
        let i = hook as usize;
        self.runs[i].fetch_add(1, Ordering::Relaxed);
        if !ok {
            self.failures[i].fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl Hooks {
    /// Starts the runner (inside a tokio runtime) if any hook is configured.
    pub fn new(cfg: config::Hooks, node: proto::NodeId) -> Self {
        Self::with_counts(cfg, node, Arc::default())
    }

    /// A runner for a reloaded `[hooks]` that goes on counting where this one is.
    pub fn reconfigured(&self, cfg: config::Hooks, node: proto::NodeId) -> Self {
        Self::with_counts(cfg, node, self.counts.clone())
    }

    fn with_counts(cfg: config::Hooks, node: proto::NodeId, counts: Arc<Counts>) -> Self {
        if cfg.on_primary.is_none() && cfg.on_secondary.is_none() && cfg.on_fault.is_none() {
            return Self { tx: None, counts };
        }
        let (tx, rx) = watch::channel(None);
        tokio::spawn(run(cfg, node, rx, counts.clone()));
        Self {
            tx: Some(tx),
            counts,
        }
    }

    /// Per hook: (its name, runs started, runs failed) since the agent started.
    pub fn counts(&self) -> Vec<(&'static str, u64, u64)> {
        Hook::ALL
            .iter()
            .map(|h| {
                let i = *h as usize;
                (
                    h.name(),
                    self.counts.runs[i].load(Ordering::Relaxed),
                    self.counts.failures[i].load(Ordering::Relaxed),
                )
            })
            .collect()
    }

    pub fn fire(&self, run: HookRun) {
        if let Some(tx) = &self.tx {
            tx.send_replace(Some(run));
        }
    }
}

/// The hook a change of role from `from` to `to` (role names, as the core gives them)
/// runs, if any: `on_primary` on becoming primary, `on_secondary` on becoming secondary
/// or witness from primary or candidate.
pub fn on_role_change(from: Role, to: Role, term: u64) -> Option<HookRun> {
    let hook = match to {
        Role::Primary => Hook::OnPrimary,
        Role::Secondary | Role::Witness if matches!(from, Role::Primary | Role::Candidate) => {
            Hook::OnSecondary
        }
        _ => return None,
    };
    Some(HookRun {
        hook,
        term,
        role: to.to_string(),
        previous_role: from.to_string(),
    })
}

/// The hook a core event runs, if any: `on_fault` when this node stepped down as
/// primary (before the role it falls back to is seen at the end of the turn).
pub fn on_event(event: &Event) -> Option<HookRun> {
    match event {
        Event::SteppedDown { term, .. } => Some(HookRun {
            hook: Hook::OnFault,
            term: term.0,
            role: Role::Secondary.to_string(),
            previous_role: Role::Primary.to_string(),
        }),
        _ => None,
    }
}

async fn run(
    cfg: config::Hooks,
    node: proto::NodeId,
    mut rx: watch::Receiver<Option<HookRun>>,
    counts: Arc<Counts>,
) {
    while rx.changed().await.is_ok() {
        let Some(r) = rx.borrow_and_update().clone() else {
            continue;
        };
        let path = match r.hook {
            Hook::OnPrimary => &cfg.on_primary,
            Hook::OnSecondary => &cfg.on_secondary,
            Hook::OnFault => &cfg.on_fault,
        };
        if let Some(path) = path {
            let ok = run_one(path, &node, &r, cfg.timeout.0).await;
            counts.ran(r.hook, ok);
        }
    }
}

/// Runs one hook to its end or its timeout; whether it succeeded.
async fn run_one(path: &PathBuf, node: &proto::NodeId, r: &HookRun, timeout: Duration) -> bool {
    let name = r.hook.name();
    let mut cmd = tokio::process::Command::new(path);
    cmd.env_clear()
        .env("PATH", HOOK_PATH)
        .env("QUORATE_NODE", node.as_str())
        .env("QUORATE_TERM", r.term.to_string())
        .env("QUORATE_ROLE", &r.role)
        .env("QUORATE_PREVIOUS_ROLE", &r.previous_role)
        .env("QUORATE_HOOK", name)
        .stdin(std::process::Stdio::null())
        // Its own process group, so a timeout kills what it started too.
        .process_group(0)
        .kill_on_drop(true);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(hook = name, path = %path.display(), "hook cannot start: {e}");
            return false;
        }
    };
    match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(status)) if status.success() => {
            tracing::info!(hook = name, path = %path.display(), term = r.term, "hook ran");
            true
        }
        Ok(Ok(status)) => {
            tracing::warn!(hook = name, path = %path.display(), "hook failed: {status}");
            false
        }
        Ok(Err(e)) => {
            tracing::warn!(hook = name, path = %path.display(), "hook: {e}");
            false
        }
        Err(_) => {
            kill_group(&child);
            let _ = child.kill().await;
            tracing::warn!(
                hook = name,
                path = %path.display(),
                "hook still running after {}; killed",
                humantime::format_duration(timeout)
            );
            false
        }
    }
}

/// SIGKILLs the hook's process group (it leads it, and is not reaped yet, so its pid
/// names no one else's group).
fn kill_group(child: &tokio::process::Child) {
    let Some(pid) = child.id().and_then(|id| i32::try_from(id).ok()) else {
        return;
    };
    let Some(pgid) = rustix::process::Pid::from_raw(pid) else {
        return;
    };
    if let Err(e) = rustix::process::kill_process_group(pgid, rustix::process::Signal::KILL)
        && e != rustix::io::Errno::SRCH
    {
        tracing::warn!("cannot kill the hook's process group {pid}: {e}");
    }
}

#[cfg(test)]
mod tests {
    use proto::Term;

    use super::*;

    #[test]
    fn which_role_change_runs_which_hook() {
        let table: &[(&str, &str, Option<Hook>)] = &[
            ("candidate", "primary", Some(Hook::OnPrimary)),
            ("secondary", "primary", Some(Hook::OnPrimary)),
            ("primary", "secondary", Some(Hook::OnSecondary)),
            ("candidate", "secondary", Some(Hook::OnSecondary)),
            ("primary", "witness", Some(Hook::OnSecondary)),
            ("secondary", "candidate", None),
            ("starting", "secondary", None),
            ("secondary", "witness", None),
            ("primary", "candidate", None),
        ];
        for (from, to, want) in table {
            let got = on_role_change(Role::parse(from), Role::parse(to), 7);
            assert_eq!(got.as_ref().map(|r| r.hook), *want, "{from} → {to}");
            if let Some(r) = got {
                assert_eq!(
                    (r.term, r.role.as_str(), r.previous_role.as_str()),
                    (7, Role::parse(to).as_str(), Role::parse(from).as_str())
                );
            }
        }
    }

    #[test]
    fn stepping_down_is_the_fault() {
        let r = on_event(&Event::SteppedDown {
            term: Term(4),
            reason: "lease lost",
        });
        let r = r.map(|r| (r.hook, r.term, r.role, r.previous_role));
        assert_eq!(
            r,
            Some((Hook::OnFault, 4, "secondary".into(), "primary".into()))
        );
        assert!(on_event(&Event::BecamePrimary { term: Term(4) }).is_none());
    }
}

/// Real hooks, real processes: what a hook sees and what a timeout leaves behind.
#[cfg(test)]
mod process_tests {
    #![allow(clippy::unwrap_used)]
    use std::os::unix::fs::PermissionsExt;
    use std::path::Path;

    use super::*;

    fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    fn run_of(hook: Hook, term: u64) -> HookRun {
        HookRun {
            hook,
            term,
            role: "primary".into(),
            previous_role: "secondary".into(),
        }
    }

    fn gone(pid: &str) -> bool {
        // Gone, or a zombie waiting for whoever inherited it: either way not running.
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| s.split_whitespace().nth(2) == Some("Z"))
            .unwrap_or(true)
    }

    #[tokio::test]
    async fn a_hook_gets_a_clean_environment_and_a_timeout_kills_its_children() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display();
        let hook = script(
            dir.path(),
            "hook",
            &format!("env > {d}/env\nsleep 300 &\necho $! > {d}/child\nsleep 300"),
        );
        let node = proto::NodeId::new("n1").unwrap();
        let ok = run_one(
            &hook,
            &node,
            &run_of(Hook::OnPrimary, 4),
            Duration::from_millis(500),
        )
        .await;
        assert!(!ok, "a hook killed at its timeout counts as failed");

        let env = std::fs::read_to_string(dir.path().join("env")).unwrap();
        for line in env.lines() {
            let name = line.split('=').next().unwrap_or("");
            assert!(
                name.starts_with("QUORATE_")
                    || ["PATH", "PWD", "SHLVL", "_", "OLDPWD"].contains(&name),
                "the agent's environment leaked into the hook: {line}"
            );
        }
        assert!(env.contains("QUORATE_TERM=4\n") && env.contains("QUORATE_HOOK=on_primary\n"));
        assert!(env.contains(&format!("PATH={HOOK_PATH}\n")));

        let child = std::fs::read_to_string(dir.path().join("child")).unwrap();
        let child = child.trim();
        let mut waited = 0;
        while !gone(child) && waited < 50 {
            tokio::time::sleep(Duration::from_millis(20)).await;
            waited += 1;
        }
        assert!(gone(child), "the hook's child {child} outlived the timeout");
    }

    #[tokio::test]
    async fn runs_fired_while_one_runs_coalesce_to_the_newest() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display();
        let hook = script(
            dir.path(),
            "hook",
            &format!("echo $QUORATE_TERM >> {d}/terms\nsleep 0.3"),
        );
        let cfg = config::Hooks {
            on_primary: Some(hook),
            ..config::Hooks::default()
        };
        let hooks = Hooks::new(cfg, proto::NodeId::new("n1").unwrap());
        hooks.fire(run_of(Hook::OnPrimary, 1));
        // Let the first one start, then fire two more while it runs.
        let terms = dir.path().join("terms");
        while !terms.exists() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        hooks.fire(run_of(Hook::OnPrimary, 2));
        hooks.fire(run_of(Hook::OnPrimary, 3));
        let mut waited = 0;
        while std::fs::read_to_string(&terms).unwrap().lines().count() < 2 && waited < 200 {
            tokio::time::sleep(Duration::from_millis(20)).await;
            waited += 1;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(std::fs::read_to_string(&terms).unwrap(), "1\n3\n");
        // Two runs started, none failed; a reloaded runner goes on counting.
        let counted = hooks
            .reconfigured(config::Hooks::default(), proto::NodeId::new("n1").unwrap())
            .counts();
        assert_eq!(
            counted,
            [
                ("on_primary", 2, 0),
                ("on_secondary", 0, 0),
                ("on_fault", 0, 0)
            ]
        );
    }
}
